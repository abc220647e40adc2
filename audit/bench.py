"""Audit log benchmarks: ``python -m benchmarks audit`` prints one JSON line per figure.

* appends per second: steps with intent and result each committed
  (``synchronous=FULL``), no new frames; baseline: bare sqlite3 doing the same
  two durable commits per step without chain, scrubbing or state tables;
* ``verify`` of a 10,000-step log;
* stored frame bytes per step on a realistic session, against one PNG per step.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from audit import synthetic
from audit.log import AuditLog
from audit.store import Synchronous, make_engine
from audit.verify import verify
from policies.decision import Decision

ALLOW = Decision(effect="allow", rule_ids=("gui.allow",), reason="ordinary GUI action",
                 policy_sha256="5e" * 32)


def _write_steps(log: AuditLog, session_id: str, count: int, frame_sha: str) -> float:
    started = time.perf_counter()
    for index in range(count):
        step_id = log.record_intent(session_id, index=index, action=synthetic.action_for(index),
                                    proposed_raw={"id": f"call_{index}"}, validation_error=None,
                                    decision=ALLOW, frame_before_sha256=frame_sha, secret=False)
        log.record_result(step_id, status="done", output={}, error=None,
                          frame_after_sha256=frame_sha,
                          timings_ms={"execute_ms": 12.0, "settle_ms": 30.0})
    return time.perf_counter() - started


def _bare_sqlite_steps_per_s(path: Path, count: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, action TEXT, status TEXT)")
    started = time.perf_counter()
    for index in range(count):
        conn.execute("BEGIN IMMEDIATE")
        cursor = conn.execute("INSERT INTO steps (action, status) VALUES (?, 'pending')",
                              (f'{{"type":"click","x":{index}}}',))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE steps SET status = 'done' WHERE id = ?", (cursor.lastrowid,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def _steps_per_s(path: Path, count: int, synchronous: Synchronous) -> float:
    with AuditLog.open(path, engine=make_engine(path, synchronous=synchronous)) as log:
        session_id = log.start_session(synthetic.session_info())
        frame_sha = log.put_frame(synthetic.frame(0))
        return count / _write_steps(log, session_id, count, frame_sha)


def bench_appends(workdir: Path, count: int = 1000) -> list[dict[str, Any]]:
    durable = _steps_per_s(workdir / "appends.db", count, "FULL")
    bare = _bare_sqlite_steps_per_s(workdir / "bare.db", count)
    cpu_only = _steps_per_s(workdir / "appends-nosync.db", count, "OFF")
    return [
        {"name": "audit.appends_per_s", "value": round(durable), "unit": "steps/s",
         "baseline": round(bare), "target": 1000,
         "note": "intent + result, each a durable commit (fsync); baseline: bare sqlite3 "
                 "doing the same two commits per step on the same disk, in the same run"},
        {"name": "audit.appends_per_s_without_fsync", "value": round(cpu_only),
         "unit": "steps/s", "baseline": None, "target": 1000,
         "note": "same, synchronous=OFF: the log's own cost, without the disk's"},
    ]


def bench_verify(workdir: Path, count: int = 10_000) -> list[dict[str, Any]]:
    path = workdir / "verify.db"
    # Built without fsync to save time; verify reads the same file either way.
    with AuditLog.open(path, engine=make_engine(path, synchronous="OFF")) as log:
        session_id = log.start_session(synthetic.session_info())
        frame_sha = log.put_frame(synthetic.frame(0))
        _write_steps(log, session_id, count, frame_sha)
        log.end_session(session_id, outcome="done", reason="benchmark")
    started = time.perf_counter()
    report = verify(path)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"benchmark log does not verify: {report.summary()}")
    return [{"name": "audit.verify_10k_steps", "value": round(elapsed, 3), "unit": "s",
             "baseline": None, "target": 2.0, "records": report.records}]


def bench_frame_bytes(workdir: Path, steps: int = 100) -> list[dict[str, Any]]:
    path = workdir / "frames.db"
    with AuditLog.open(path) as log:
        synthetic.record_session(log, steps)
    png_per_step = sum(len(synthetic.frame(index + 1).png) for index in range(steps)) / steps
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT sum(length(data)) FROM blobs").fetchone()[0]
    per_step = stored / steps
    return [
        {"name": "audit.frame_bytes_per_step", "value": round(per_step), "unit": "bytes",
         "baseline": round(png_per_step), "target": round(0.3 * png_per_step)},
        {"name": "audit.frame_bytes_share_of_png", "value": round(per_step / png_per_step, 4),
         "unit": "ratio", "baseline": 1.0, "target": 0.3},
    ]


def run_benchmarks() -> list[dict[str, Any]]:
    """Every audit figure, one dict per JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        return [*bench_appends(workdir), *bench_verify(workdir), *bench_frame_bytes(workdir)]


if __name__ == "__main__":
    import json

    for row in run_benchmarks():
        print(json.dumps(row))
