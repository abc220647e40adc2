"""The planner benchmark's task set checked with ``--oracle`` on Docker: wall time by workers.

Every task's oracle must pass (and every precheck fail) for the figure to count.
The baseline of the one-worker figure is the sum of the attempts' own times (what
the run would take with no scheduling overhead); of the two-worker figure, the
one-worker wall time measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TASKS = Path(__file__).resolve().parent.parent / "examples" / "tasks"
WORKER_COUNTS = (1, 2)


def oracle_run(output: Path, workers: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of ``deskhand test examples/tasks --oracle`` and its results lines."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(TASKS), "--oracle",
                           "--workers", str(workers), "--output", str(output),
                           "--reporter", "json"],
                          capture_output=True, text=True, timeout=1800, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"the oracle run exited {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-800:]}")
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()]
    return elapsed, lines


def run_benchmarks() -> Iterable[dict[str, Any]]:
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in WORKER_COUNTS:
            wall, lines = oracle_run(Path(tmp) / f"out-{workers}", workers)
            walls[workers] = wall
            row: dict[str, Any] = {"name": f"tasks.oracle_wall.workers_{workers}",
                                   "value": round(wall, 1), "unit": "s", "n": len(lines)}
            if workers == 1:
                row |= {"baseline": round(sum(x["duration_s"] for x in lines), 1),
                        "baseline_name": "sum of the attempts' own times"}
            else:
                row |= {"baseline": round(walls[1], 1), "baseline_name": "one worker"}
            yield row
