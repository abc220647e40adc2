"""The planner benchmark's task set (examples/tasks): its shape, and every oracle on Docker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agent.suites.schema import Case, load_suites
from audit.log import AuditLog

TASKS = Path(__file__).resolve().parents[2] / "examples" / "tasks"
APPS = ("terminal", "editor", "calculator", "files", "desktop")
GRADES = ("easy", "medium", "hard")


def _cases() -> list[Case]:
    return [case for suite in load_suites([TASKS]) for case in suite.cases]


def test_the_task_set_has_thirty_graded_goal_tasks_over_five_apps() -> None:
    cases = _cases()
    assert len(cases) >= 30
    assert all(case.goal for case in cases)
    grades = Counter(next(t for t in case.tags if t in GRADES) for case in cases)
    assert set(grades) == set(GRADES)
    assert all(sum(t in GRADES for t in case.tags) == 1 for case in cases)
    apps = Counter(t for case in cases for t in case.tags if t in APPS)
    assert set(apps) == set(APPS)
    assert all(n >= 5 for n in apps.values()), apps
    assert sum(case.infeasible for case in cases) >= 3


def test_every_task_has_checks_a_precheck_and_an_oracle() -> None:
    for case in _cases():
        assert case.expect, case.id
        assert case.precheck == "must_fail", case.id
        assert case.oracle, case.id
        assert not case.steps, f"{case.id}: a task is its goal, not scripted steps"


def test_an_oracle_never_sleeps_to_wait() -> None:
    for case in _cases():
        assert all(step.kind != "wait" for step in case.oracle), case.id


@pytest.mark.docker
@pytest.mark.slow
def test_every_oracle_passes_and_every_precheck_fails_on_docker(
        tmp_path: Path, desktop_image: str) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(TASKS), "--oracle",
                           "--workers", "2", "--output", str(out), "--reporter", "json"],
                          capture_output=True, text=True, timeout=1800)
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    broken = [f"{x['case']}: {x['status']}: {x['message']}" for x in lines
              if x["status"] != "passed"]
    assert not broken, "\n".join(broken)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert len({x["case"] for x in lines}) == len(_cases())
    with AuditLog.open(out / "audit.db") as log:
        for line in lines:
            prechecks = [e.data["held"] for e in log.events(line["session_id"])
                         if e.kind == "suite_precheck"]
            assert len(prechecks) == 1, line["case"]
            assert not all(prechecks[0]), f"{line['case']}: the precheck held"
