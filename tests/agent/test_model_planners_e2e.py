"""Model planners through the real SDKs, against a loopback provider, driving
a real desktop and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anthropic
import openai
import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.planners.anthropic import AnthropicPlanner
from agent.planners.base import Planner
from agent.planners.openai import OpenAIChatPlanner
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.base import Size
from sandbox.local import LocalSandbox
from tests.planners.loopback import (
    LoopbackLLM,
    chat_completion,
    claude_message,
    function_call,
    text_block,
    tool_use,
)

API_KEY = "sk-ant-api03-e2e-NEVER-STORE-THIS-KEY-0123456789"
SCREEN = Size(1280, 800)


def _drive(planner: Planner, db: Path, check_path: str) -> tuple[RunSummary, str]:
    with AuditLog.open(db, redact=[API_KEY]) as log, LocalSandbox(size=SCREEN) as box:
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log),
                         config=LoopConfig(approval_timeout_s=0, max_turns=10))
        summary = loop.run("write a note in a terminal")
        content = box.check(["cat", os.path.expanduser(check_path)]).stdout
    return summary, content


@pytest.mark.x11
def test_claude_finishes_a_terminal_task_on_a_real_desktop(tmp_path: Path) -> None:
    with LoopbackLLM() as llm, anthropic.Anthropic(api_key=API_KEY, base_url=llm.base_url,
                                                   max_retries=0) as client:
        llm.queue_messages(
            claude_message([tool_use({"action": "key", "text": "ctrl+alt+t"}),
                            tool_use({"action": "wait", "duration": 1})]),
            claude_message([tool_use({"action": "type", "text": "echo 'Claude — été' > "
                                                                 "~/claude.txt\n"})]),
            claude_message([tool_use({"action": "type", "text": "sudo rm -rf /\n"})]),
            claude_message([text_block("Saved the note; the cleanup was refused.")]),
        )
        planner = AnthropicPlanner(client, model="claude-sonnet-4-6", sandbox_size=SCREEN)
        summary, content = _drive(planner, tmp_path / "audit.db", "~/claude.txt")
        sent = [request.raw for request in llm.requests]

    assert summary.outcome == "done", summary.reason
    assert content == "Claude — été\n"
    assert (summary.executed, summary.denied) == (3, 1)
    assert all(API_KEY.encode() not in body for body in sent)
    assert API_KEY.encode() not in (tmp_path / "audit.db").read_bytes()


@pytest.mark.x11
def test_a_local_vision_model_finishes_a_terminal_task(tmp_path: Path) -> None:
    with LoopbackLLM() as llm, openai.OpenAI(api_key="unused", base_url=llm.openai_base_url,
                                             max_retries=0) as client:
        llm.queue_chat(
            chat_completion(tool_calls=[function_call("press_keys", {"keys": ["ctrl", "alt", "t"]}),
                                        function_call("wait", {"seconds": 1})]),
            chat_completion(tool_calls=[function_call("type_text",
                                                      {"text": "echo vlm > ~/vlm.txt\n"})]),
            chat_completion(tool_calls=[function_call("finish", {"status": "done",
                                                                 "summary": "saved"})]),
        )
        planner = OpenAIChatPlanner(client, model="qwen2.5-vl", sandbox_size=SCREEN)
        summary, content = _drive(planner, tmp_path / "audit.db", "~/vlm.txt")

    assert summary.outcome == "done", summary.reason
    assert content == "vlm\n"


def test_the_cli_plans_with_claude_and_never_stores_the_api_key(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with LoopbackLLM() as llm:
        llm.queue_messages(
            claude_message([tool_use({"action": "left_click", "coordinate": [80, 80]})],
                           input_tokens=1000, output_tokens=50),
            claude_message([text_block(f"done; by the way my key is {API_KEY}")]),
        )
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "run", "click the corner", "--planner",
             "anthropic", "--base-url", llm.base_url, "--model", "claude-sonnet-4-6",
             "--sandbox", "fake", "--db", str(db)],
            env={**os.environ, "ANTHROPIC_API_KEY": API_KEY,
                 "DESKHAND_HOME": str(tmp_path)},
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )
        requests = llm.requests

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "click at (100, 100)" in proc.stdout  # (80, 80) on the XGA screenshot
    assert len(requests) == 2
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*") if p.is_file())
    assert API_KEY.encode() not in stored
    assert b"claude-sonnet-4-6" in stored


def test_the_cli_explains_a_missing_api_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "anything", "--planner", "anthropic",
         "--sandbox", "fake", "--db", str(tmp_path / "a.db")],
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )
    assert proc.returncode == 2
    assert "ANTHROPIC_API_KEY" in proc.stderr
