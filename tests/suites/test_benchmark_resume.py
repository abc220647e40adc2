"""Ctrl-C in the middle of a benchmark, then --resume: only the missing trials run.

Goal cases on the fake sandbox; the model is the real Anthropic SDK against a
loopback server that holds model b's first answer until the runner was interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.planners.loopback import (
    MESSAGES,
    LoopbackLLM,
    RecordedRequest,
    claude_message,
    text_block,
)

SUITE = """\
suite: Resume
defaults: {sandbox: fake}
cases:
  - id: one
    goal: "Say done for one"
    expect: [{cmd: {run: "true", exit: 127}}]
  - id: two
    goal: "Say done for two"
    expect: [{cmd: {run: "true", exit: 127}}]
"""


class HoldsModelB:
    """Answers "Done." at once for model a; for model b, waits until released."""

    def __init__(self) -> None:
        self.b_asked = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: RecordedRequest) -> dict[str, Any]:
        model = request.body["model"]
        if model == "claude-b":
            self.b_asked.set()
            self.release.wait(60)
        return claude_message([text_block("Done.")], model=model)


def _command(suite: Path, out: Path, llm: LoopbackLLM, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agent", "test", str(suite), "--output", str(out),
            "--planner", "anthropic", "--models", "claude-a,claude-b", "--trials", "2",
            "--base-url", llm.base_url, "--reporter", "json", *extra]


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def test_an_interrupted_benchmark_resumes_with_only_the_missing_trials(tmp_path: Path) -> None:
    suite = tmp_path / "resume.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key"}
    model = HoldsModelB()
    with LoopbackLLM() as llm:
        llm.respond_with(MESSAGES, model)
        runner = subprocess.Popen(_command(suite, out, llm), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
        assert model.b_asked.wait(240), "model b was never asked"
        runner.send_signal(signal.SIGINT)
        # Let the held request answer once the runner has had time to see Ctrl-C: on the
        # fake sandbox the other trials would otherwise finish in a blink, before a
        # starved main thread (a loaded CI machine) gets to the signal.
        threading.Timer(3.0, model.release.set).start()
        printed, _ = runner.communicate(timeout=120)
        assert runner.returncode == 130, printed
        assert "--resume" in printed
        first = _lines(out)
        finished_a = [x for x in first if x["model"] == "claude-a" and x["status"] == "passed"]
        assert len(finished_a) == 4
        unfinished = [x for x in first if x["status"] == "error"]
        assert unfinished  # model b's trials: interrupted or never run
        sent_before = len(llm.requests)

        resumed = subprocess.run(_command(suite, out, llm, "--resume"), capture_output=True,
                                 text=True, timeout=300, env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        asked_again = [r.body["model"] for r in llm.requests[sent_before:]]
    b_trials = 4 - sum(x["model"] == "claude-b" and x["status"] == "passed" for x in first)
    assert asked_again == ["claude-b"] * b_trials  # model a is not asked again
    last = {(x["case"], x["repeat"]): x["status"] for x in _lines(out)}
    assert len(last) == 8
    assert set(last.values()) == {"passed"}
    assert "| claude-a |" in (out / "results.md").read_text(encoding="utf-8")
