"""Goal cases hand their goal to a model planner (the real Anthropic SDK, a loopback model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.planners.anthropic import FAILED_PREFIX
from tests.planners.loopback import LoopbackLLM, claude_message, text_block, tool_use

SUITE = """\
suite: Goals
defaults: {sandbox: fake}
cases:
  - id: does-it
    goal: "Type the word hello"
    expect:
      - cmd: {run: "true", exit: 127}
  - id: gives-up
    goal: "Open the spreadsheet that does not exist"
    infeasible: true
  - id: claims-done
    goal: "Open the spreadsheet that does not exist"
    infeasible: true
  - id: from-the-oracle
    goal: "Type the word hi"
    oracle:
      - type: "hi"
"""


def test_goal_infeasible_and_false_success_statuses(tmp_path: Path) -> None:
    suite = tmp_path / "goals.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    with LoopbackLLM() as llm:
        llm.queue_messages(
            claude_message([tool_use({"action": "type", "text": "hello"})]),
            claude_message([text_block("Typed it.")]),
            claude_message([text_block(f"{FAILED_PREFIX} there is no spreadsheet")]),
            claude_message([text_block("Opened it.")]),
            claude_message([text_block("Typed hi.")]),
        )
        done = subprocess.run(
            [sys.executable, "-m", "agent", "test", str(suite), "--output",
             str(tmp_path / "out"), "--planner", "anthropic", "--model", "claude-test",
             "--base-url", llm.base_url],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "ANTHROPIC_API_KEY": "test-key"})
        sent = len(llm.requests)
    lines = {x["case"]: x for x in map(json.loads, (tmp_path / "out" / "results.jsonl")
                                       .read_text().splitlines())}
    assert done.returncode == 1, done.stdout + done.stderr
    assert {c: x["status"] for c, x in lines.items()} == {
        "does-it": "passed", "gives-up": "passed", "claims-done": "failed",
        "from-the-oracle": "passed"}
    assert "infeasible" in lines["claims-done"]["message"]
    assert sent == 5

    oracle = subprocess.run(
        [sys.executable, "-m", "agent", "test", str(suite), "--output", str(tmp_path / "o"),
         "--oracle", "--grep", "from-the-oracle"], capture_output=True, text=True, timeout=300)
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr
