"""Checkpoints and undo in the container, for homes of 1, 10 and 100 MB, in one run.

Figures (JSON lines):

- ``checkpoint.full_ms`` / ``checkpoint.full_mb``: the first checkpoint of a home
  (nothing stored yet): snapshot inside the container, read out over the exec
  channel, split into content-addressed blobs; its stored size.
- ``checkpoint.incremental_ms`` / ``checkpoint.incremental_new_kb``: the next one after
  one 100 KB file changed; the bytes it newly stored.
- ``checkpoint.undo_ms``: restoring the home from a checkpoint.
- baseline ``checkpoint.tar_in_container_ms``: only ``tar -cz`` of the same home inside
  the container (no transfer, no store): the floor of any snapshot through tar.

Home contents: half random bytes (incompressible), half repeated text, in 100 KB files.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from agent.undo import CheckpointBounds, take_checkpoint, undo
from audit.log import AuditLog
from audit.records import SessionInfo
from sandbox.build import DEFAULT_IMAGE
from sandbox.docker import DockerSandbox, DockerSandboxConfig

SIZES_MB = (1, 10, 100)
REPEATS = {1: 5, 10: 3, 100: 1}
BOUNDS = CheckpointBounds(roots=("~/bench",), max_bytes=500 * 1024 * 1024, timeout_s=600)
FILL = r"""
import os, sys
w = os.path.expanduser("~/bench"); os.makedirs(w, exist_ok=True)
for i in range(int(sys.argv[1]) * 10):
    data = os.urandom(100_000) if i % 2 else (b"line of ordinary text %d\n" % i) * 4000
    open(f"{w}/f{i:05d}", "wb").write(data[:100_000])
"""
TOUCH = r"""
import os
open(os.path.expanduser("~/bench/f00001"), "wb").write(os.urandom(100_000))
"""


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _stats(name: str, values: list[float], unit: str, size: int) -> list[dict[str, Any]]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return [{"name": f"{name}.p50", "home_mb": size, "value": round(statistics.median(values), 1),
             "unit": unit}, {"name": f"{name}.p95", "home_mb": size, "value": round(p95, 1),
                             "unit": unit}]


def _one_size(box: DockerSandbox, size: int, tmp: Path) -> list[dict[str, Any]]:
    box.check(["rm", "-rf", "bench"])
    box.check(["python3", "-c", FILL, str(size)], timeout_s=300)
    full, full_mb, incremental, new_kb, undo_ms, tar_ms = [], [], [], [], [], []
    for repeat in range(REPEATS[size]):
        with AuditLog.open(tmp / f"{size}-{repeat}.db") as log:
            session = log.start_session(SessionInfo(
                task="bench", planner="script", model="", policy_name="default",
                policy_sha256="0" * 64, sandbox_kind="docker", sandbox_image="",
                screen_width=1280, screen_height=800, network=False))
            start = time.perf_counter()
            assert take_checkpoint(box, log, session, 1, BOUNDS)
            full.append(_ms(start))
            box.check(["python3", "-c", TOUCH])
            start = time.perf_counter()
            assert take_checkpoint(box, log, session, 2, BOUNDS)
            incremental.append(_ms(start))
            events = [e.data for e in log.events(session) if e.kind == "checkpoint"]
            full_mb.append(events[0]["new_bytes"] / 1e6)
            new_kb.append(events[1]["new_bytes"] / 1e3)
            start = time.perf_counter()
            assert undo(box, log, session, 1, BOUNDS).restored
            undo_ms.append(_ms(start))
        start = time.perf_counter()
        box.check(["tar", "-czf", "/tmp/bench.tgz", "bench"], timeout_s=300)
        tar_ms.append(_ms(start))
    return [*_stats("checkpoint.full_ms", full, "ms", size),
            *_stats("checkpoint.full_mb", full_mb, "MB", size),
            *_stats("checkpoint.incremental_ms", incremental, "ms", size),
            *_stats("checkpoint.incremental_new_kb", new_kb, "kB", size),
            *_stats("checkpoint.undo_ms", undo_ms, "ms", size),
            *_stats("checkpoint.tar_in_container_ms", tar_ms, "ms", size)]


def run_benchmarks(image: str = DEFAULT_IMAGE,
                   sizes: tuple[int, ...] = SIZES_MB) -> list[dict[str, Any]]:
    client = docker.from_env()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, \
            DockerSandbox(client, DockerSandboxConfig(image=image)) as box:
        for size in sizes:
            rows += _one_size(box, size, Path(tmp))
    return rows


if __name__ == "__main__":
    import json
    import sys

    for row in run_benchmarks(sizes=tuple(int(a) for a in sys.argv[1:]) or SIZES_MB):
        print(json.dumps(row))
