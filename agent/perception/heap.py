"""Keeping the process's C heap lean while perception runs (glibc's malloc; elsewhere a no-op).

Perception's big buffers are image-sized numpy arrays (a 1280x800 frame is
3 MiB, its float copy for a model 12 MiB) allocated and freed on a worker
thread.  Left to its defaults, glibc serves them badly for a long-lived
process: after the first such buffer is freed it raises its mmap threshold
and serves the next ones from the heap, where the freed pages stay
resident, and the worker thread gets a heap of its own (up to 64 MiB) that
keeps what it freed.  :func:`keep_heap_lean` fixes the threshold at 1 MiB
and keeps one heap for all threads; :func:`release_freed_memory` hands free
heap pages back after a model loads (onnxruntime's arena takes its blocks
straight from the system, so nothing would reuse them).  Measured on a
model-planner run with perception: 20-30 MiB less at peak (README,
"Perception memory").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

_M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's malloc.h
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024


def keep_heap_lean() -> None:
    """Big buffers straight from and back to the system; one heap for every thread.

    Call before starting the threads that read frames (a heap made earlier stays)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_ARENA_MAX, 1)


def release_freed_memory() -> None:
    """Give free heap pages back to the system (after a model load, a triager let go)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
