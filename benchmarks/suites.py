"""Suite runner figures on Docker: per-case overhead, cases per minute by worker count
(beside the same cases run one by one with ``deskhand run``), and how well text
matching reads real frames (beside the plain search).

Overhead is an attempt's time beyond its steps: the sandbox's start and stop,
setup, precheck, ``expect`` checks and teardown (``overhead_s`` in results.jsonl).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CASES = 8
STEPS = """\
      - click: [640, 400]
      - type: "echo bench\\n"
      - wait: 0.5
"""
WORKER_COUNTS = (1, 2, 4)


def _suite_text() -> str:
    cases = "".join(f"  - id: bench-{i}\n    steps:\n{STEPS}"
                    "      - assert_cmd: {run: 'true'}\n" for i in range(CASES))
    return f"suite: Bench\ndefaults: {{sandbox: docker}}\ncases:\n{cases}"


def _deskhand(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *map(str, args)],
                          capture_output=True, text=True, timeout=1200, check=False)


def _cases_per_minute(folder: Path, suite: Path, workers: int,
                      *flags: str) -> tuple[float, list[float]]:
    output = folder / f"out-{workers}{''.join(flags)}"
    started = time.monotonic()
    done = _deskhand("test", suite, "--workers", str(workers), "--output", output,
                     "--reporter", "json", *flags)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"deskhand test exited {done.returncode}: {done.stderr[-500:]}")
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()]
    return CASES / elapsed * 60, [x["overhead_s"] for x in lines]


def _one_by_one_per_minute(folder: Path) -> float:
    script = folder / "case.yaml"
    script.write_text(f"task: bench case\nsteps:\n{STEPS}", encoding="utf-8")
    started = time.monotonic()
    for _ in range(CASES):
        done = _deskhand("run", "--script", script, "--sandbox", "docker",
                         "--db", folder / "run.db", "--no-perception")
        if done.returncode != 0:
            raise RuntimeError(f"deskhand run exited {done.returncode}: {done.stderr[-500:]}")
    return CASES / (time.monotonic() - started) * 60


def _reading_rates() -> list[dict[str, Any]]:
    import docker

    from agent.suites.attempt import SharedPerception
    from agent.suites.reading_rate import measure
    from sandbox.docker import DockerSandbox

    with DockerSandbox(docker.from_env()) as box:
        rates = measure(box, SharedPerception(), count=30)
    return [
        {"name": "suites.text_match_rate", "value": round(rates.match_rate, 3), "unit": "share",
         "n": rates.shown, "baseline": round(rates.baseline_match_rate, 3), "target": 0.9},
        {"name": "suites.text_false_match_rate", "value": round(rates.false_match_rate, 3),
         "unit": "share", "n": rates.absent,
         "baseline": round(rates.baseline_false_match_rate, 3), "target": 0.05},
    ]


def run_benchmarks() -> Iterable[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suite = folder / "bench.suite.yaml"
        suite.write_text(_suite_text(), encoding="utf-8")
        baseline = _one_by_one_per_minute(folder)
        overheads: list[float] = []
        one_worker = 0.0
        for workers in WORKER_COUNTS:
            rate, overhead = _cases_per_minute(folder, suite, workers)
            if workers == 1:
                overheads, one_worker = overhead, rate
            yield {"name": f"suites.cases_per_minute.workers_{workers}", "value": round(rate, 1),
                   "unit": "cases/min", "n": CASES,
                   "baseline": round(baseline, 1), "baseline_name": "deskhand run, one by one"}
        # A scripted case's clicks are judged by the accessibility tree only with
        # --parser a11y|auto: one tree read per clicked frame (agent/suites/attempt.py).
        tree_rate, _ = _cases_per_minute(folder, suite, 1, "--parser", "a11y")
        yield {"name": "suites.cases_per_minute.workers_1.parser_a11y",
               "value": round(tree_rate, 1), "unit": "cases/min", "n": CASES,
               "baseline": round(one_worker, 1), "baseline_name": "--parser ocr, 1 worker"}
        yield {"name": "suites.case_overhead.p50", "value": round(statistics.median(overheads), 3),
               "unit": "s", "n": len(overheads), "target": 1.5}
    yield from _reading_rates()
