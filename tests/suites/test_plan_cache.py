"""The plan cache: a rerun of unchanged screens asks no model; a changed screen asks once.

Goal cases on the fake sandbox, the real Anthropic SDK against a loopback model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from agent.suites.plan_cache import CachedPlanner, PlanKey, PlanStore
from audit.log import AuditLog
from sandbox.actions import TypeText
from sandbox.fake import FakeSandbox
from tests.planners.loopback import MESSAGES, LoopbackLLM, claude_message, text_block, tool_use

SUITE = """\
suite: Cached goals
defaults: {sandbox: fake}
cases:
  - id: types-hello
    goal: "Type the word hello"
    expect:
      - cmd: {run: "true", exit: 127}
  - id: nothing-to-do
    goal: "Check that the desktop is idle"
    steps: []
    expect:
      - cmd: {run: "true", exit: 127}
"""


def _run(suite: Path, out: Path, llm: LoopbackLLM, cache: str,
         cache_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "test", str(suite), "--output", str(out),
         "--planner", "anthropic", "--model", "claude-test", "--base-url", llm.base_url,
         "--cache", cache, "--cache-dir", str(cache_dir), "--reporter", "list,json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "ANTHROPIC_API_KEY": "test-key"})


def _statuses(out: Path) -> dict[str, str]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {x["case"]: x["status"] for x in map(json.loads, lines)}


def _cache_hit_steps(out: Path) -> list[object]:
    with AuditLog.open(out / "audit.db") as log:
        return [step.proposed_raw for session in log.list_sessions()
                for step in log.steps(session.id)
                if isinstance(step.proposed_raw, dict) and "plan_cache" in step.proposed_raw]


def test_a_cached_rerun_asks_no_model_and_a_changed_screen_asks_once(tmp_path: Path) -> None:
    suite = tmp_path / "goals.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    cache_dir = tmp_path / "plans"
    with LoopbackLLM() as llm:
        llm.queue_messages(
            claude_message([tool_use({"action": "type", "text": "hello"})]),
            claude_message([text_block("Typed it.")]),
            claude_message([text_block("It is idle.")]),
        )
        first = _run(suite, tmp_path / "run1", llm, "read-write", cache_dir)
        assert first.returncode == 0, first.stdout + first.stderr
        assert len(llm.requests) == 3
        entries = sorted(cache_dir.glob("*.json"))
        assert len(entries) == 3  # two turns of types-hello, one of nothing-to-do
        written = {p.name: p.read_text() for p in entries}

        second = _run(suite, tmp_path / "run2", llm, "read-only", cache_dir)
        assert second.returncode == 0, second.stdout + second.stderr
        assert len(llm.requests) == 3  # not one more request
        assert _statuses(tmp_path / "run2") == {"types-hello": "passed",
                                                "nothing-to-do": "passed"}
        hits = _cache_hit_steps(tmp_path / "run2")
        assert len(hits) == 1
        assert isinstance(hits[0], dict)
        assert hits[0]["plan_cache"] == "hit"

        # One screen differs: a step types "x" before the goal of nothing-to-do.
        changed = tmp_path / "changed.suite.yaml"
        changed.write_text(SUITE.replace('    steps: []\n', '    steps:\n      - type: "x"\n'),
                           encoding="utf-8")
        llm.queue_messages(claude_message([text_block("Still idle.")]))
        third = _run(changed, tmp_path / "run3", llm, "read-write", cache_dir)
        assert third.returncode == 0, third.stdout + third.stderr
        assert len(llm.requests) == 4  # exactly one fallback request
        assert "Check that the desktop is idle" in json.dumps(llm.requests[-1].body)

        # A live plan for a screen that is cached does not replace the good entry.
        llm.queue_messages(
            claude_message([tool_use({"action": "type", "text": "hullo"})]),
            claude_message([text_block("Typed it.")]),
            claude_message([text_block("It is idle.")]),
        )
        fourth = _run(suite, tmp_path / "run4", llm, "write-only", cache_dir)
        assert fourth.returncode == 0, fourth.stdout + fourth.stderr
        assert len(llm.requests) == 7
    after = {p.name: p.read_text() for p in cache_dir.glob("*.json")}
    # Added beside the others: the changed screen's plan, and hullo's next screen.
    assert len(after) == 5
    assert all(after[name] == text for name, text in written.items())
    assert "hullo" not in "".join(after.values())


class _OnePlan:
    """A live planner that proposes typing once, then says done; counts its turns."""

    name = "scripted"
    model = "m"

    def __init__(self) -> None:
        self.turns = 0

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        self.turns += 1
        if self.turns == 1:
            return Turn(actions=[ProposedAction(action=TypeText(text="hi"))])
        return Turn(finished="done", message="done")


def _observe(box: FakeSandbox, step: int) -> Observation:
    return Observation(frame=box.screenshot(), task="type hi", step_index=step)


def test_a_failed_attempt_writes_nothing_and_a_bad_entry_is_a_miss(tmp_path: Path) -> None:
    store = PlanStore(tmp_path)
    with FakeSandbox() as box:
        live = _OnePlan()
        planner = CachedPlanner(live, store, mode="read-write", policy_sha256="p")
        turn = planner.next_turn(_observe(box, 0), [])
        assert turn.actions
        assert live.turns == 1
        assert planner.stats.misses == 1
        # No commit (the attempt did not pass): the folder stays empty.
        assert not list(tmp_path.glob("*.json"))
        planner.commit()
        entry = next(tmp_path.glob("*.json"))
        entry.write_text("{not json", encoding="utf-8")
        again = CachedPlanner(_OnePlan(), store, mode="read-only", policy_sha256="p")
        again.next_turn(_observe(box, 0), [])
        assert again.stats.hits == 0
        assert again.stats.misses == 1


def test_the_key_covers_goal_step_screen_model_and_policy() -> None:
    base = PlanKey(goal="g", step=0, screen_sha256="s", model="m", policy_sha256="p")
    variants = [PlanKey("h", 0, "s", "m", "p"), PlanKey("g", 1, "s", "m", "p"),
                PlanKey("g", 0, "t", "m", "p"), PlanKey("g", 0, "s", "n", "p"),
                PlanKey("g", 0, "s", "m", "q")]
    assert len({base.digest, *(v.digest for v in variants)}) == 6


@pytest.mark.docker
@pytest.mark.slow
def test_a_real_desktop_rerun_is_served_from_the_cache(tmp_path: Path,
                                                        desktop_image: str) -> None:
    tasks = Path(__file__).resolve().parents[2] / "examples" / "tasks"
    suite = tmp_path / "hello.suite.yaml"
    suite.write_text((tasks / "terminal.suite.yaml").read_text(encoding="utf-8"),
                     encoding="utf-8")
    cache_dir = tmp_path / "plans"
    command = "printf 'hello world\\n' > ~/work/hello.txt\n"
    with LoopbackLLM() as llm:
        for run_number in (1, 2):
            llm.queue_messages(claude_message([tool_use({"action": "type", "text": command})]),
                               claude_message([text_block("Done.")]))
            run = subprocess.run(
                [sys.executable, "-m", "agent", "test", str(suite), "--grep",
                 "terminal-hello-file", "--output", str(tmp_path / f"out{run_number}"),
                 "--planner", "anthropic", "--model", "claude-test", "--base-url",
                 llm.base_url, "--cache", "read-write", "--cache-dir", str(cache_dir),
                 "--reporter", "json"],
                capture_output=True, text=True, timeout=300,
                env={**os.environ, "ANTHROPIC_API_KEY": "test-key"})
            assert run.returncode == 0, run.stdout + run.stderr
        assert len(llm.requests) == 2  # the second run: both turns from the cache
        assert llm.pending(MESSAGES) == 2  # its scripted replies were never asked for
    assert len(_cache_hit_steps(tmp_path / "out2")) == 1  # the typing step, marked a hit
