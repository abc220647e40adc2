"""``python -m benchmarks``: every benchmark, one JSON line per figure.

Each figure carries its target and, where one exists, the baseline measured
in the same run, so a reader compares them side by side.  A benchmark that
fails prints an ``error`` line and makes the run exit non-zero; the others
still run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks import steps

Bench = Callable[[], Iterable[dict[str, Any]]]


def bench_local_steps(count: int = 60, naive_count: int = 10) -> list[dict[str, Any]]:
    from sandbox.local import LocalSandbox

    with tempfile.TemporaryDirectory() as tmp, LocalSandbox(size=steps.SIZE) as box:
        ours = steps.deskhand_step_ms(box, count, Path(tmp))
    with steps.plain_display() as display:
        naive = steps.naive_step_ms(display, naive_count)
    rows = steps.figures("local.step_overhead", ours, target_p50=40, target_p95=150)
    rows += steps.figures("local.naive_xdotool_scrot_sleep2", naive)
    # Half the steps type text, after which the reference harness does not sleep, so the
    # medians compare unlike steps; the means compare the same mix of actions.
    rows.append({"name": "local.speedup_vs_naive.mean",
                 "value": round(statistics.fmean(naive) / statistics.fmean(ours), 1),
                 "unit": "x", "target": 20,
                 "note": "same action mix; per-action figures are in the per_action bench"})
    return rows


def _module_bench(module: str) -> Bench:
    def run() -> Iterable[dict[str, Any]]:
        result: Iterable[dict[str, Any]] = importlib.import_module(module).run_benchmarks()
        return result
    return run


BENCHES: dict[str, Bench] = {
    "steps": bench_local_steps,
    "per_action": _module_bench("benchmarks.per_action"),
    "perception_overhead": _module_bench("benchmarks.perception_overhead"),
    "docker": _module_bench("sandbox.bench_docker"),
    "audit": _module_bench("audit.bench"),
    "policy": _module_bench("policies.bench"),
    "shell": _module_bench("policies.bench_shell"),
    "gate": _module_bench("sandbox.bench_gate"),
    "perception": _module_bench("agent.perception.bench"),
    "planner": _module_bench("agent.planners.bench"),
    "tui": _module_bench("tui.bench"),
    "suites": _module_bench("benchmarks.suites"),
    "mcp": _module_bench("agent.mcp.bench"),
    "egress": _module_bench("benchmarks.egress"),
    "startup": _module_bench("benchmarks.startup"),
    "tasks": _module_bench("benchmarks.tasks"),
    "redaction": _module_bench("benchmarks.redaction"),
    "checkpoints": _module_bench("benchmarks.checkpoints"),
    "accessibility": _module_bench("benchmarks.accessibility"),
    "elements": _module_bench("benchmarks.element_lists"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("only", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)}")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = False
    for name in args.only or list(BENCHES):
        try:
            for row in BENCHES[name]():
                print(json.dumps({"bench": name, **row}, ensure_ascii=False), flush=True)
        except Exception as exc:  # one broken benchmark must not hide the others
            failed = True
            print(json.dumps({"bench": name, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
            traceback.print_exc(file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
