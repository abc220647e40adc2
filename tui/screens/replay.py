"""Replay one session step by step: the frame each action saw, with the
action drawn on it (a ring where it clicked, the path it dragged), beside the
policy's decision and the human's approval, and the checkpoints and rollbacks
(◆ a checkpoint before the step, ◇ skipped, ⟲ files put back before it ran)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from audit.records import ApprovalRecord, StepRecord
from audit.render import describe_target
from audit.undo_marks import UndoMark
from tui.store import TuiStore, action_of, rule_list
from tui.widgets.badges import decision_badge, status_text, undo_sign
from tui.widgets.frame_view import Picture, make_frame_view

STEP_COLUMNS = ("#", "", "action", "decision", "result")


class ReplayScreen(Screen[None]):
    """Step through a recorded session."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("right,n", "step(1)", "Next"),
        Binding("left,p", "step(-1)", "Previous"),
        Binding("t", "toggle_after", "Before/after"),
    ]

    index: reactive[int] = reactive(0, init=False)
    show_after: reactive[bool] = reactive(False, init=False)

    def __init__(self, store: TuiStore, session_id: str, *,
                 graphics: str = "halfblock") -> None:
        super().__init__()
        self.store = store
        self.session_id = session_id
        self.graphics = graphics
        self.steps: list[StepRecord] = []
        self.marks: dict[int, list[UndoMark]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="replay-main"):
            yield make_frame_view(self.graphics, id="replay-frame", placeholder="no frame")
            with Vertical(id="replay-side"):
                yield DataTable(id="replay-steps", cursor_type="row")
                yield Static(id="replay-detail")
        yield Footer()

    def on_mount(self) -> None:
        session = self.store.session(self.session_id)
        self.sub_title = f"{self.session_id[:12]} — {session.task if session else '?'}"
        self.steps = self.store.steps(self.session_id)
        for mark in self.store.undo_marks(self.session_id):
            self.marks.setdefault(mark.position, []).append(mark)
        table: DataTable[str | Text] = self.query_one("#replay-steps", DataTable)
        table.add_columns(*STEP_COLUMNS)
        for position, step in enumerate(self.steps):
            table.add_row(str(step.index), _signs(self.marks.get(position, [])), _describe(step),
                          decision_badge(step.decision_effect, step.status),
                          status_text(step.status), key=str(step.id))
        table.focus()
        self._show()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.index = event.cursor_row

    def action_step(self, delta: int) -> None:
        """Move ``delta`` steps forward (or back)."""
        if self.steps:
            target = min(max(0, self.index + delta), len(self.steps) - 1)
            self.query_one("#replay-steps", DataTable).move_cursor(row=target)
            self.index = target

    def action_toggle_after(self) -> None:
        """Switch between the frame the action saw and the frame after it."""
        self.show_after = not self.show_after

    def watch_index(self) -> None:
        self._show()

    def watch_show_after(self) -> None:
        self._show()

    @property
    def step(self) -> StepRecord | None:
        return self.steps[self.index] if 0 <= self.index < len(self.steps) else None

    def _show(self) -> None:
        step = self.step
        self.query_one("#replay-frame").show(self._picture(step))  # type: ignore[attr-defined]
        detail = step_detail(step, after=self.show_after) if step else Text("no steps recorded")
        marks = self.marks.get(self.index, []) if step else []
        self.query_one("#replay-detail", Static).update(
            Text("\n").join([detail, *(_mark_line(mark) for mark in marks)]))

    def _picture(self, step: StepRecord | None) -> Picture | None:
        if step is None:
            return None
        sha = step.frame_after_sha256 if self.show_after else step.frame_before_sha256
        image = self.store.frame(sha)
        if image is None or sha is None:
            return None
        action = None if self.show_after else action_of(step)
        return Picture(key=f"{sha}:{step.id}:{self.show_after}", image=image, action=action,
                       target=None if self.show_after else step.target_element)


def _signs(marks: list[UndoMark]) -> Text:
    return Text("").join(undo_sign(mark.kind) for mark in marks[:2]) or Text(" ")


def _mark_line(mark: UndoMark) -> Text:
    label = "checkpoint" if mark.kind in ("checkpoint", "skipped") else "rollback"
    return Text.assemble(undo_sign(mark.kind), f" {label} ", (mark.text, "dim"))


def _describe(step: StepRecord) -> str:
    action = action_of(step)
    if action is not None:
        return action.describe()
    return step.action_type or "invalid"


def step_detail(step: StepRecord, *, after: bool = False) -> Text:
    """What happened in ``step``, in a few lines."""
    lines = [
        Text.assemble((f"step {step.index}  ", "bold"), _describe(step)),
        Text.assemble(("target  ", "dim"), describe_target(step.target_element))
        if step.target_element else Text(""),
        Text.assemble(decision_badge(step.decision_effect, step.status), "  ",
                      rule_list(step.rule_ids)),
        Text(step.decision_reason or step.validation_error or "", style="italic"),
        approval_text(step.approval),
        Text.assemble(("result ", "dim"), status_text(step.status),
                      f"  {step.error}" if step.error else "", _timings(step)),
        Text("showing the frame after the step" if after
             else "showing the frame the action saw (t: after)", style="dim"),
    ]
    return Text("\n").join(line for line in lines if line.plain)


def approval_text(approval: ApprovalRecord | None) -> Text:
    """Who answered the approval, how and how fast; empty when none was asked."""
    if approval is None:
        return Text("")
    answer = approval.answer
    if answer is None:
        return Text(f"approval {approval.status}: nobody answered", style="yellow")
    verdict = f"approved ({answer.scope})" if answer.approved else "denied"
    waited = answer.answered_at - approval.requested_at
    return Text(f"{verdict} by {answer.approver} via {answer.channel} after {waited:.1f} s",
                style="green" if answer.approved else "red")


def _timings(step: StepRecord) -> str:
    total = step.timings_ms.get("total_ms")
    return f"  {total:.0f} ms" if total is not None else ""
