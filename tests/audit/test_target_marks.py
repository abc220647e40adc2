"""The element under a click, as replay, export and the approval card draw it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image
from rich.console import Console

from audit import synthetic
from audit.export import export_html
from audit.log import AuditLog
from audit.render import TARGET_COLOR, describe_target, draw_action, marks_for
from audit.replay import TerminalReplay
from policies.decision import Decision, TargetElement
from sandbox.actions import Click

DELETE = TargetElement(role="push button", name="Delete", box=(100, 60, 180, 90), source="a11y")
ASK = Decision(effect="ask", rule_ids=("ui.click.consequential",), reason="consequential",
               policy_sha256="ab" * 32)


def test_a_target_with_a_box_is_outlined_and_named_before_the_action_marks() -> None:
    marks = marks_for(Click(x=140, y=75), DELETE)
    assert [m.kind for m in marks] == ["target", "point", "caption"]
    assert marks[0].points == ((100, 60), (180, 90))
    assert marks[0].text == "push button 'Delete'"
    assert [m.kind for m in marks_for(Click(x=140, y=75), TargetElement("text", "Delete"))] \
        == ["point", "caption"], "a target without a box adds no shape"


def test_draw_action_outlines_the_target_in_its_own_colour() -> None:
    image = Image.new("RGB", (320, 200))
    drawn = draw_action(image, Click(x=140, y=75), caption=False, target=DELETE)
    plain = draw_action(image, Click(x=140, y=75), caption=False)
    assert drawn.getpixel((100, 89)) == TARGET_COLOR  # the box's lower-left corner
    assert plain.getpixel((100, 89)) == (0, 0, 0)


def test_describe_target_says_who_saw_it() -> None:
    assert describe_target(DELETE) == "push button 'Delete' (accessibility tree)"
    assert describe_target(TargetElement("text", "Send", source="ocr")) == "text 'Send' (OCR)"
    assert describe_target(TargetElement("text", "Send")) == "text 'Send'"


def _session_with_a_target(log: AuditLog) -> str:
    session_id = log.start_session(synthetic.session_info())
    frame = synthetic.frame(0)
    log.put_frame(frame)
    step_id = log.record_intent(session_id, index=0, action=Click(x=140, y=75),
                                proposed_raw=None, validation_error=None, decision=ASK,
                                frame_before_sha256=frame.sha256, secret=False,
                                target_element=DELETE)
    log.record_result(step_id, status="denied", output={}, error="not approved",
                      frame_after_sha256=None, timings_ms={})
    log.end_session(session_id, outcome="done", reason="finished")
    return session_id


def test_replay_and_export_name_the_target(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "audit.db") as log:
        session_id = _session_with_a_target(log)
        out = io.StringIO()
        TerminalReplay(log, session_id, Console(file=out, width=140)).print_all()
        html = tmp_path / "session.html"
        export_html(log, session_id, html)
    assert "target" in out.getvalue()
    assert "push button 'Delete' (accessibility tree)" in out.getvalue()
    page = html.read_text(encoding="utf-8")
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    [step] = json.loads(found[1].replace("<\\/", "</"))["steps"]
    assert step["target"] == "push button 'Delete' (accessibility tree)"
    assert step["marks"][0] == {"kind": "target", "points": [[100, 60], [180, 90]],
                                "text": "push button 'Delete'"}
