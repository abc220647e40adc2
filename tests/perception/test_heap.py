"""The heap helpers give freed memory back to the system (glibc; measured in a fresh process)."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import numpy as np
from agent.perception.heap import keep_heap_lean, release_freed_memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

lean = {lean}
if lean:
    keep_heap_lean()
# glibc raises its mmap threshold when a mapped buffer is freed: later ones come from the heap
np.ones((800, 1280, 3), dtype=np.uint8).sum()
before = rss()
# 80 frame-sized buffers, touched, then all freed but the last (which pins the heap's top)
buffers = [np.ones((800, 1280, 3), dtype=np.uint8) for _ in range(80)]
del buffers[:-1]
freed = rss()
release_freed_memory()
print(freed - before, rss() - before)
"""


def held_after(lean: bool) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(lean=lean)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    freed, trimmed = (int(value) for value in done.stdout.split())
    return freed, trimmed


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="needs the C library")
def test_frame_sized_buffers_go_back_to_the_system_once_freed() -> None:
    freed, _ = held_after(lean=True)
    assert freed < 40  # 80 x 3 MiB were allocated; only the last one is still held


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="needs the C library")
def test_trimming_hands_back_what_the_heap_kept() -> None:
    freed, trimmed = held_after(lean=False)
    assert freed > 150  # glibc's defaults: the freed buffers stay resident in the heap
    assert trimmed < 40
