"""The approval card says which element a click lands on; the human denies it there and
nothing is pressed, then the next click (on Cancel) runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from agent.registry import SandboxInputs
from audit.log import AuditLog
from sandbox.actions import Click
from sandbox.base import Sandbox
from tests.agent.test_click_targets import DIALOG_ELEMENTS, SCRIPT
from tests.tui.conftest import FakeSandboxes, make_app, make_settings, start_run, wait_until
from tui.screens.replay import step_detail
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.frame_view import FrameView

pytestmark = pytest.mark.anyio


class DialogSandboxes(FakeSandboxes):
    """Fake desktops showing a Delete/Cancel dialog in their accessibility tree."""

    def __call__(self, kind: str, inputs: SandboxInputs) -> Sandbox:
        box = super().__call__(kind, inputs)
        self.made[-1].a11y_elements.extend(DIALOG_ELEMENTS)
        return box


async def test_the_card_names_the_target_and_a_deny_leaves_it_unpressed(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    script = tmp_path / "dialog.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    sandboxes = DialogSandboxes()
    settings = make_settings(tmp_path, db_path).with_overrides(parser="a11y")
    app = make_app(audit_log, settings, script=script, sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        live = await start_run(pilot)
        queue = live.query_one(ApprovalQueue)
        await wait_until(pilot, lambda: queue.current is not None, what="the approval request")
        target = str(queue.query_one("#approval-target", Static).render())
        action = str(queue.query_one("#approval-action", Static).render())
        crop = queue.query_one("#approval-crop", FrameView).picture
        assert sandboxes.made[0].executed == [], "nothing runs before the answer"

        await pilot.press("d")
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")

    assert target == "target  push button 'Delete' (accessibility tree)"
    assert action == "approve?  click at (780, 505) on push button 'Delete'"
    assert crop is not None
    assert crop.target is not None
    assert crop.target.box == (700, 480, 860, 530)
    assert sandboxes.made[0].executed == [Click(x=600, y=505)]
    assert live.summary is not None
    steps = audit_log.steps(live.summary.session_id)
    assert [(s.status, s.target_element.name if s.target_element else None) for s in steps] \
        == [("denied", "Delete"), ("done", "Cancel")]
    assert "target  push button 'Delete' (accessibility tree)" in step_detail(steps[0]).plain
