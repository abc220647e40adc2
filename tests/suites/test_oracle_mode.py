"""``deskhand test --oracle`` on the fake sandbox: how a broken task set shows itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SUITE = """\
suite: Oracles
defaults: {sandbox: fake}
cases:
  - id: impossible
    goal: "Print on the printer that does not exist"
    infeasible: true
    expect:
      - cmd: {run: "lpstat", exit: 0, timeout: 0.1}
    oracle:
      - type: "looking"
  - id: not-so-impossible
    goal: "Do what already holds"
    infeasible: true
    expect:
      - cmd: {run: "true", exit: 127, timeout: 0.1}
    oracle:
      - type: "looking"
  - id: no-oracle
    goal: "Type the word hi"
    expect:
      - cmd: {run: "true", exit: 127}
"""


def test_oracles_give_up_on_infeasible_tasks_and_name_what_is_broken(tmp_path: Path) -> None:
    suite = tmp_path / "oracles.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), "--oracle",
                           "--output", str(tmp_path / "out"), "--reporter", "json"],
                          capture_output=True, text=True, timeout=300)
    results = {x["case"]: x for x in map(json.loads, (tmp_path / "out" / "results.jsonl")
                                         .read_text().splitlines())}
    assert done.returncode == 3, done.stdout + done.stderr  # an error: the set is broken
    assert results["impossible"]["status"] == "passed"
    assert results["not-so-impossible"]["status"] == "error"
    assert "marked infeasible, but its expect checks hold" in \
        results["not-so-impossible"]["message"]
    assert results["no-oracle"]["status"] == "failed"
    assert "no oracle steps" in results["no-oracle"]["message"]
