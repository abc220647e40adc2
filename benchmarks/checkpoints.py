"""Checkpoints and undo in the container, for homes of 1, 10 and 100 MB, and resetting a
suite's desktop between cases, all in one run.

Figures (JSON lines, p50 and p95 each, ``baseline`` beside ``value``):

- ``checkpoint.full_ms``: the first checkpoint of a home (nothing stored yet) over the
  executor's file ops; baseline: the same checkpoint through the old path, a tar read out
  in base64 through ``check``.
- ``checkpoint.incremental_ms``: the next checkpoint after one 100 KB file changed;
  baseline: the old path (which moves the whole tar again).
- ``checkpoint.full_stored_mb`` / ``checkpoint.incremental_stored_kb``: what the store
  newly wrote to disk (compressed blobs); baseline: the home's size / the changed file's.
- ``checkpoint.undo_ms``: putting the home back to the first checkpoint after the change;
  ``checkpoint.undo_all_ms``: the same after ``rm -rf`` of the whole home; baseline: the
  old path's restore.
- ``suites.case_reset_ms``: ``isolation: checkpoint``'s reset between two cases (files put
  back, processes started since ended); baseline: ``isolation: container``'s fresh
  container for the next case (start and stop).

Every checkpoint is taken with the default bounds (``sandbox/snapshots.py``: 256 MiB,
50,000 entries, 20 s), the baseline with a long timeout.  Home contents: half random
bytes (incompressible), half repeated text, in 100 KB files.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from agent.suites.reuse import WarmDesktop
from agent.undo import CheckpointBounds, take_checkpoint, undo
from audit.checkpoints import CheckpointStore
from audit.log import AuditLog
from audit.records import SessionInfo
from sandbox.build import DEFAULT_IMAGE
from sandbox.docker import DockerSandbox, DockerSandboxConfig

SIZES_MB = (1, 10, 100)
REPEATS = {1: 5, 10: 5, 100: 3}
BASELINE_REPEATS = {1: 3, 10: 2, 100: 1}
RESETS = 5
ROOTS = ("~",)
STREAMED = CheckpointBounds(roots=ROOTS)
BASE64 = CheckpointBounds(roots=ROOTS, max_bytes=1 << 30, timeout_s=600, transfer="check")
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
CASE = ("echo case > ~/case.txt && rm -f ~/bench/f00003 && "
        "(nohup xterm -title case >/dev/null 2>&1 &)")


@dataclass(slots=True)
class Samples:
    full_ms: list[float]
    incremental_ms: list[float]
    undo_ms: list[float]
    undo_all_ms: list[float]
    full_stored: list[float]
    incremental_stored: list[float]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _pair(name: str, values: list[float], baseline: list[float], unit: str,
          **extra: Any) -> list[dict[str, Any]]:
    """p50 and p95 of ``values`` beside those of ``baseline``."""
    return [{"name": f"{name}.{which}", "value": round(pick(values), 1),
             "baseline": round(pick(baseline), 1), "unit": unit, "n": len(values), **extra}
            for which, pick in (("p50", statistics.median), ("p95", _p95))]


def _stored_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() \
        else 0


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return _ms(start)


def _one_round(box: DockerSandbox, db: Path, bounds: CheckpointBounds, samples: Samples) -> None:
    """Full checkpoint, change one file, incremental checkpoint, undo: one sample each."""
    with AuditLog.open(db) as log:
        session = log.start_session(SessionInfo(
            task="bench", planner="script", model="", policy_name="default",
            policy_sha256="0" * 64, sandbox_kind="docker", sandbox_image="",
            screen_width=1280, screen_height=800, network=False))
        store = CheckpointStore.beside(log).directory
        samples.full_ms.append(_timed(lambda: _taken(box, log, session, 1, bounds)))
        after_full = _stored_bytes(store)
        box.check(["python3", "-c", TOUCH])
        samples.incremental_ms.append(_timed(lambda: _taken(box, log, session, 2, bounds)))
        samples.full_stored.append(after_full / 1e6)
        samples.incremental_stored.append((_stored_bytes(store) - after_full) / 1e3)
        samples.undo_ms.append(_timed(lambda: _undone(box, log, session, bounds)))
        box.check(["rm", "-rf", "bench"])
        samples.undo_all_ms.append(_timed(lambda: _undone(box, log, session, bounds)))


def _taken(box: DockerSandbox, log: AuditLog, session: str, step: int,
           bounds: CheckpointBounds) -> None:
    if not take_checkpoint(box, log, session, step, bounds):
        (event,) = [e.data for e in log.events(session)
                    if e.kind == "checkpoint" and e.data.get("step") == step]
        raise RuntimeError(f"checkpoint skipped: {event.get('skipped')}")


def _undone(box: DockerSandbox, log: AuditLog, session: str, bounds: CheckpointBounds) -> None:
    outcome = undo(box, log, session, 1, bounds)
    if not outcome.restored:
        raise RuntimeError(outcome.message)


def _samples(box: DockerSandbox, tmp: Path, size: int, bounds: CheckpointBounds,
             repeats: int) -> Samples:
    samples = Samples([], [], [], [], [], [])
    for repeat in range(repeats):
        db = tmp / f"{size}-{bounds.transfer}-{repeat}.db"
        _one_round(box, db, bounds, samples)
        shutil.rmtree(f"{db}.checkpoints", ignore_errors=True)
    return samples


def _one_size(box: DockerSandbox, size: int, tmp: Path) -> list[dict[str, Any]]:
    box.check(["rm", "-rf", "bench"])
    box.check(["python3", "-c", FILL, str(size)], timeout_s=300)
    ours = _samples(box, tmp, size, STREAMED, REPEATS[size])
    old = _samples(box, tmp, size, BASE64, BASELINE_REPEATS[size])
    changed_kb = [100.0] * len(ours.incremental_stored)
    return [*_pair("checkpoint.full_ms", ours.full_ms, old.full_ms, "ms", home_mb=size),
            *_pair("checkpoint.incremental_ms", ours.incremental_ms, old.incremental_ms, "ms",
                   home_mb=size),
            *_pair("checkpoint.undo_ms", ours.undo_ms, old.undo_ms, "ms", home_mb=size),
            *_pair("checkpoint.undo_all_ms", ours.undo_all_ms, old.undo_all_ms, "ms",
                   home_mb=size),
            *_pair("checkpoint.full_stored_mb", ours.full_stored, [float(size)] * 2, "MB",
                   home_mb=size, baseline_is="the home's size"),
            *_pair("checkpoint.incremental_stored_kb", ours.incremental_stored, changed_kb,
                   "kB", home_mb=size, baseline_is="the changed file's size")]


def _fresh_container_ms(client: docker.DockerClient, config: DockerSandboxConfig) -> float:
    start = time.perf_counter()
    with DockerSandbox(client, config):
        pass
    return _ms(start)


def _wait_for_process(box: DockerSandbox, pattern: str) -> None:
    deadline = time.monotonic() + 20
    while box.check(["pgrep", "-f", pattern]).exit_code != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no process matching {pattern!r} started")
        time.sleep(0.05)


def _case_resets(client: docker.DockerClient, config: DockerSandboxConfig,
                 tmp: Path) -> list[dict[str, Any]]:
    fresh = [_fresh_container_ms(client, config) for _ in range(RESETS)]
    resets = []
    with DockerSandbox(client, config) as box:
        box.check(["sh", "-c", "mkdir -p ~/work && echo alpha > ~/work/a.txt"])
        box.check(["python3", "-c", FILL, "10"], timeout_s=120)
        warm = WarmDesktop(("bench", "docker", False), box, CheckpointStore(tmp / "reset"))
        warm.checkpoint_after_setup()
        for _ in range(RESETS):
            box.check(["sh", "-c", CASE])
            _wait_for_process(box, "title cas[e]")
            resets.append(_timed(warm.reset))
    return _pair("suites.case_reset_ms", resets, fresh, "ms", home_mb=10,
                 baseline_is="a fresh container (start and stop)")


def run_benchmarks(image: str = DEFAULT_IMAGE,
                   sizes: tuple[int, ...] = SIZES_MB) -> list[dict[str, Any]]:
    client = docker.from_env()
    config = DockerSandboxConfig(image=image)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        with DockerSandbox(client, config) as box:
            for size in sizes:
                rows += _one_size(box, size, Path(tmp))
        rows += _case_resets(client, config, Path(tmp))
    return rows


if __name__ == "__main__":
    import json
    import sys

    for row in run_benchmarks(sizes=tuple(int(a) for a in sys.argv[1:]) or SIZES_MB):
        print(json.dumps(row))
