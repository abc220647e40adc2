"""The planner benchmark end to end: a scripted model through the real Anthropic SDK.

Two models, two trials, four tasks on real Docker desktops.  The "model" (a
loopback server) solves some tasks, gives up on some, runs into the policy on
one, and claims done falsely on others; the results table must count exactly
that, with Wilson bounds checked against a hand computation.  Then a benchmark
cut short (the last lines of results.jsonl gone) is finished with --resume,
which asks the model only for the missing trials.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.planners.anthropic import FAILED_PREFIX
from tests.planners.loopback import (
    MESSAGES,
    LoopbackLLM,
    RecordedRequest,
    claude_message,
    text_block,
    tool_use,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-5"  # $1/$5 and $3/$15 per million

SUITE = """\
suite: Table
defaults: {sandbox: docker, timeout: 60, max_steps: 10}
setup:
  - exec: "mkdir -p ~/work"
  - launch: "xterm -title work-terminal -geometry 80x20+0+0"
  - wait_for_window: {title: "^work-terminal$", timeout: 20}
cases:
  - id: t-solve
    goal: "Create the file ~/work/ok.txt"
    expect: [{file: {path: ~/work/ok.txt, timeout: 3}}]
    precheck: must_fail
  - id: t-fail
    goal: "Create the file ~/work/two.txt"
    expect: [{file: {path: ~/work/two.txt, timeout: 1}}]
    precheck: must_fail
  - id: t-false
    goal: "Create the file ~/work/three.txt"
    expect: [{file: {path: ~/work/three.txt, timeout: 1}}]
    precheck: must_fail
  - id: t-infeasible
    infeasible: true
    goal: "Print a test page on the printer Office-Laser"
    expect: [{cmd: {run: "command -v lpstat", timeout: 1}}]
    precheck: must_fail
"""


class ScriptedModel:
    """Answers by model, task and turn.

    haiku: solves t-solve, gives up t-fail, claims t-false done, gives up the infeasible task.
    sonnet: solves t-solve once and claims it done without acting the other time, types a
    destructive command in t-fail (asked, denied: no approver) and gives up, claims t-false
    done, claims the infeasible task done.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first_turns: dict[tuple[str, str], int] = {}

    def __call__(self, request: RecordedRequest) -> dict[str, Any]:
        body = request.body
        model, messages = body["model"], body["messages"]
        task = _task_of(messages)
        turn = sum(m["role"] == "assistant" for m in messages)
        if turn == 0:
            with self.lock:
                self.first_turns[(model, task)] = self.first_turns.get((model, task), 0) + 1
        first = self.first_turns[(model, task)] == 1
        return claude_message(self.blocks(model, task, turn, first), model=model)

    @staticmethod
    def blocks(model: str, task: str, turn: int, first: bool) -> list[dict[str, Any]]:
        done, give_up = [text_block("Done.")], [text_block(f"{FAILED_PREFIX} I cannot.")]
        if "ok.txt" in task:
            if turn == 0 and (model == HAIKU or first):
                return [tool_use({"action": "type", "text": "touch ~/work/ok.txt\n"})]
            return done
        if "two.txt" in task:
            if model == SONNET and turn == 0:
                return [tool_use({"action": "type", "text": "rm -rf ~/work\n"})]
            return give_up
        if "three.txt" in task:
            return done
        return give_up if model == HAIKU else done


def _task_of(messages: list[dict[str, Any]]) -> str:
    for block in messages[0]["content"]:
        if block.get("type") == "text" and block["text"].startswith("Task:"):
            return str(block["text"])
    raise AssertionError("no task in the first message")


def _bench(suite: Path, out: Path, llm: LoopbackLLM,
           *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "test", str(suite), "--output", str(out),
         "--planner", "anthropic", "--models", f"{HAIKU},{SONNET}", "--trials", "2",
         "--workers", "2", "--base-url", llm.base_url, "--reporter", "list,html,json", *extra],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "ANTHROPIC_API_KEY": "test-key"})


def _rows(out: Path) -> dict[str, dict[str, str]]:
    reader = csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8")))
    return {row["model"]: row for row in reader}


TIMED = ("wall_p50_s", "wall_p90_s", "model_p50_s", "model_p90_s")


def _untimed(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {model: {k: v for k, v in row.items() if k not in TIMED}
            for model, row in rows.items()}


def test_the_results_table_counts_successes_false_claims_and_costs(
        tmp_path: Path, desktop_image: str) -> None:
    suite = tmp_path / "table.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    with LoopbackLLM() as llm:
        llm.respond_with(MESSAGES, ScriptedModel())
        done = _bench(suite, out, llm)
        sent = len(llm.requests)
        assert done.returncode == 1, done.stdout + done.stderr
        # haiku: 2+1+1+1 requests per trial pair member; sonnet: 2 or 1, 2, 1, 1.
        assert sent == 10 + 11
        rows = _rows(out)
        haiku, sonnet = rows[HAIKU], rows[SONNET]

        assert (haiku["tasks"], haiku["trials"], haiku["successes"]) == ("4", "8", "4")
        assert (haiku["claimed_done"], haiku["false_successes"]) == ("4", "2")
        assert float(haiku["false_success_rate"]) == pytest.approx(0.5)
        # Wilson 4/8, z = 1.96: centre 0.5, half = 1.96·sqrt(1/32 + z²/256) / (1 + z²/8)
        #                                      = 1.96·0.215072 / 1.480183 = 0.284790
        assert float(haiku["wilson_low"]) == pytest.approx(0.2152, abs=1e-4)
        assert float(haiku["wilson_high"]) == pytest.approx(0.7848, abs=1e-4)
        assert float(haiku["pass_at_k"]) == pytest.approx(0.5)  # t-solve 1, infeasible 1
        assert (haiku["tokens_in"], haiku["tokens_out"]) == ("1000", "200")
        assert float(haiku["cost_usd"]) == pytest.approx(10 * 0.0002)
        assert float(haiku["cost_per_success_usd"]) == pytest.approx(0.002 / 4)
        assert (haiku["approvals_asked"], haiku["approvals_denied"]) == ("0", "0")

        assert (sonnet["trials"], sonnet["successes"]) == ("8", "1")
        # done claims: t-solve twice (one false), t-false twice, infeasible twice
        assert (sonnet["claimed_done"], sonnet["false_successes"]) == ("6", "5")
        # Wilson 1/8: centre (0.125 + z²/16)/(1 + z²/8) = 0.365092/1.480183 = 0.246655,
        # half = 1.96·sqrt(0.125·0.875/8 + z²/256)/1.480183 = 0.224240
        assert float(sonnet["wilson_low"]) == pytest.approx(0.0224, abs=1e-4)
        assert float(sonnet["wilson_high"]) == pytest.approx(0.4709, abs=1e-4)
        assert float(sonnet["pass_at_k"]) == pytest.approx(0.25)  # only t-solve: 1 - 0/1
        assert (sonnet["approvals_asked"], sonnet["approvals_denied"]) == ("2", "2")
        assert float(sonnet["cost_usd"]) == pytest.approx(11 * 0.0006)
        assert haiku["infra_errors"] == sonnet["infra_errors"] == "0"

        statuses = [json.loads(line) for line in
                    (out / "results.jsonl").read_text().splitlines()]
        blocked = {x["status"] for x in statuses
                   if x["model"] == SONNET and x["case"] == "t-fail"}
        assert blocked == {"blocked_by_policy"}
        assert "Planner benchmark" in (out / "report.html").read_text(encoding="utf-8")
        assert "| model |" in (out / "results.md").read_text(encoding="utf-8")
        table = _untimed(_rows(out))

        # Cut the benchmark short, then resume: only the missing trials ask the model.
        lines = (out / "results.jsonl").read_text().splitlines()
        kept, lost = lines[:-3], [json.loads(line) for line in lines[-3:]]
        (out / "results.jsonl").write_text("\n".join(kept) + "\n")
        resumed = _bench(suite, out, llm, "--resume")
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        assert len(llm.requests) - sent == sum(x["model_requests"] for x in lost)
    assert len((out / "results.jsonl").read_text().splitlines()) == len(lines)
    assert _untimed(_rows(out)) == table  # the rerun trials took their own time
