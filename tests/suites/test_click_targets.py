"""A suite's click at bare coordinates is judged by what it lands on: a goal case's model
clicking the word "Delete" is asked about (``ui.click.consequential``, the target in the
step record); a scripted case's click is judged only by an accessibility tree, and the
fake desktop has none, which the attempt's session notes once.

Real ``deskhand test`` in a subprocess on the fake desktop, the real OCR, the real
Anthropic SDK against the loopback model, the real audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from audit.log import AuditLog
from policies.decision import TargetElement
from sandbox.actions import Click
from tests.planners.loopback import (
    LoopbackLLM,
    RecordedRequest,
    claude_message,
    text_block,
    tool_use,
)

# The fake desktop draws typed text from (8, 24), 14 pixels a line: the word's middle.
ON_THE_WORD = (22, 30)
SCREEN = (1280, 800)

SUITE = f"""\
suite: Targets
defaults: {{sandbox: fake}}
cases:
  - id: model-clicks-delete
    goal: "Tidy up, but keep every file"
  - id: script-clicks-delete
    steps:
      - type: "Delete"
      - click: [{ON_THE_WORD[0]}, {ON_THE_WORD[1]}]
"""


def in_model_pixels(request: RecordedRequest, point: tuple[int, int]) -> list[int]:
    """``point`` (sandbox pixels) in the screenshot size the planner told the model."""
    tool = request.body["tools"][0]
    width, height = tool["display_width_px"], tool["display_height_px"]
    return [round(point[0] * width / SCREEN[0]), round(point[1] * height / SCREEN[1])]


def types_then_clicks_delete(llm: LoopbackLLM) -> None:
    """The 'model': types "Delete", clicks on the word, then says it is done."""
    def reply(request: RecordedRequest) -> dict[str, Any]:
        turn = len(llm.requests_to("/v1/messages"))
        if turn == 1:
            return claude_message([tool_use({"action": "type", "text": "Delete"})])
        if turn == 2:
            point = in_model_pixels(request, ON_THE_WORD)
            return claude_message([tool_use({"action": "left_click", "coordinate": point})])
        return claude_message([text_block("Kept the files.")])

    llm.respond_with("/v1/messages", reply)


def test_a_goal_cases_click_on_delete_is_asked_about_a_scripts_is_judged_by_the_tree(
        tmp_path: Path) -> None:
    suite = tmp_path / "targets.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    with LoopbackLLM() as llm:
        types_then_clicks_delete(llm)
        done = subprocess.run(
            [sys.executable, "-m", "agent", "test", str(suite), "--output", str(out),
             "--planner", "anthropic", "--model", "claude-sonnet-4-6", "--base-url",
             llm.base_url, "--parser", "auto"],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "ANTHROPIC_API_KEY": "test-key"})
    assert "Traceback" not in done.stderr, done.stderr
    results = {x["case"]: x for x in map(json.loads,
                                         (out / "results.jsonl").read_text().splitlines())}
    with AuditLog.open(out / "audit.db") as log:
        model_steps = log.steps(results["model-clicks-delete"]["session_id"])
        script_steps = log.steps(results["script-clicks-delete"]["session_id"])
        notes = [[e for e in log.events(x["session_id"]) if e.kind == "elements_note"]
                 for x in results.values()]

    model_click = model_steps[-1]
    assert isinstance(model_click.action, Click)
    assert (model_click.decision_effect, model_click.status) == ("ask", "denied")
    assert model_click.rule_ids == ("ui.click.consequential",)
    target = model_click.target_element
    assert isinstance(target, TargetElement)
    assert (target.role, target.name, target.source) == ("text", "Delete", "ocr")
    assert "(text 'Delete')" in (model_click.decision_reason or "")

    script_click = script_steps[-1]
    assert script_click.action == Click(x=ON_THE_WORD[0], y=ON_THE_WORD[1])
    assert (script_click.status, script_click.target_element) == ("done", None)
    assert results["script-clicks-delete"]["status"] == "passed"
    # Each attempt read the (missing) tree at its click and says why once.
    assert [len(n) for n in notes] == [1, 1]
    assert all("the fake desktop has no tree" in n[0].data["text"] for n in notes)


def test_a_parser_suites_cannot_read_with_is_bad_input(tmp_path: Path) -> None:
    suite = tmp_path / "targets.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), "--output",
                           str(tmp_path / "out"), "--parser", "vlm"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--parser 'vlm': choose one of ocr, a11y, auto" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out" / "results.jsonl").exists()
