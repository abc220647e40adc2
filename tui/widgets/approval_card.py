"""One approval request in detail: the action in words, a crop of the frame
around its target, the rule that asked and why, and the time left."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from audit.records import ApprovalRequest
from audit.render import describe_target
from policies.decision import TargetElement
from tui.store import rule_list
from tui.widgets.frame_view import Picture, make_frame_view

KEYS_HINT = ("[b]a[/] approve once   [b]s[/] allow this rule for the session   [b]d[/] deny"
             "   [b]f[/] full frame")


class ApprovalCard(Widget):
    """Shows one :class:`~audit.records.ApprovalRequest`."""

    def __init__(self, *, graphics: str = "halfblock", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.graphics = graphics
        self.request: ApprovalRequest | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield make_frame_view(self.graphics, id="approval-crop",
                                  placeholder="frame not stored")
            with Vertical(id="approval-text"):
                yield Static(id="approval-action")
                yield Static(id="approval-target")
                yield Static(id="approval-line")
                yield Static(id="approval-window")
                yield Static(id="approval-words")
                yield Static(id="approval-rule")
                yield Static(id="approval-session")
                yield Static(id="approval-deadline")
                yield Static(KEYS_HINT, id="approval-keys")
                yield Static(id="approval-full")

    def show(self, request: ApprovalRequest, picture: Picture | None, *,
             task: str = "", step_index: int | None = None, now: float | None = None,
             typed_line: str | None = None, window_title: str | None = None,
             reading_words: bool = False, target: TargetElement | None = None) -> None:
        """Show ``request``; ``picture`` is the crop around its target, ``typed_line``
        (for typing) the input line as it will read once the text is typed, ``target``
        the element the action lands on (role and name)."""
        self.request = request
        shown = self.query_one("#approval-target", Static)
        shown.display = target is not None  # no empty line for actions that aim at nothing
        shown.update(Text.assemble(("target  ", "dim"), (describe_target(target), "bold"))
                     if target is not None else "")
        self.query_one("#approval-line", Static).update(
            Text.assemble(("line  ", "dim"), (typed_line, "bold")) if typed_line else "")
        self.query_one("#approval-full", Static).update("")
        self.query_one("#approval-window", Static).update(
            Text.assemble(("window  ", "dim"), window_title) if window_title else "")
        self.query_one("#approval-words", Static).update(
            Text("reading the screen…", style="dim") if reading_words else "")
        self.query_one("#approval-crop").show(picture)  # type: ignore[attr-defined]
        self.query_one("#approval-action", Static).update(
            Text.assemble(("approve?  ", "bold"), (request.summary, "bold yellow")))
        self.query_one("#approval-rule", Static).update(
            Text.assemble(("rule ", "dim"), rule_list(request.rule_ids), ("  ", ""),
                          (request.reason, "italic")))
        step = "?" if step_index is None else str(step_index)
        self.query_one("#approval-session", Static).update(
            Text.assemble(("step ", "dim"), step, ("  of task ", "dim"), task))
        self.show_deadline(now)

    def show_words(self, words: str) -> None:
        """The words the screen shows around the target (empty: none could be read)."""
        self.query_one("#approval-words", Static).update(
            Text.assemble(("screen  ", "dim"), words) if words else "")

    def show_full_frame_path(self, path: Path, *, viewer: str | None = None) -> None:
        """Say where the full-resolution frame of this request was written, and where to
        watch the desktop live when its run offers a VNC viewer."""
        parts: list[tuple[str, str] | str] = [("full frame  ", "dim"), str(path)]
        if viewer:
            parts += [("   watch live  ", "dim"), f"vncviewer {viewer}"]
        self.query_one("#approval-full", Static).update(Text.assemble(*parts))

    def show_deadline(self, now: float | None = None) -> None:
        """Refresh the countdown to the automatic deny."""
        if self.request is None:
            return
        left = max(0.0, self.request.deadline_at - (time.time() if now is None else now))
        self.query_one("#approval-deadline", Static).update(
            Text(f"denied automatically in {time_left(left)}",
                 style="red" if left < 10 else "dim"))


def time_left(seconds: float) -> str:
    """A countdown as precise as it needs to be: seconds, then minutes, then hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h"
