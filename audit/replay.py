"""Replay a recorded session: in the terminal, or again on a fresh sandbox.

The terminal replay shows each step's frame as half-block characters (two
pixels per cell) with the action drawn on it, and beside it what was
proposed, what the policy decided, who approved it and what happened.
:func:`rerun` runs the executed actions again and measures how far each new
frame is from the recorded one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image, ImageChops
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from audit.frames import open_png
from audit.log import AuditLog
from audit.network import NetworkAttempt, network_attempts, network_request, selfcheck_line
from audit.records import EventRecord, SessionRecord, StepRecord, run_notes
from audit.render import describe, describe_target, draw_marks, marks_for
from audit.undo_marks import undo_marks
from sandbox.base import Sandbox

STATUS_COLORS = {"done": "green", "denied": "red", "invalid": "yellow", "error": "red",
                 "interrupted": "magenta", "pending": "cyan"}


# -- frames as terminal cells ----------------------------------------------------

def frame_as_blocks(image: Image.Image, columns: int) -> Text:
    """``image`` scaled to ``columns`` cells wide, two pixel rows per cell ("▀")."""
    rows = max(1, round(image.height * columns / image.width / 2))
    small = image.convert("RGB").resize((columns, rows * 2), Image.Resampling.BOX)
    pixels = small.load()
    assert pixels is not None
    text = Text(no_wrap=True, overflow="crop")
    for row in range(rows):
        for column in range(columns):
            top, bottom = pixels[column, row * 2], pixels[column, row * 2 + 1]
            text.append("▀", Style(color=_hex(top), bgcolor=_hex(bottom)))
        if row < rows - 1:
            text.append("\n")
    return text


def _hex(pixel: object) -> str:
    assert isinstance(pixel, tuple)
    return "#{:02x}{:02x}{:02x}".format(*pixel[:3])


# -- one step ------------------------------------------------------------------------

def step_details(step: StepRecord) -> Table:
    """What happened at one step, as label/value rows."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    color = STATUS_COLORS.get(step.status, "white")
    table.add_row("step", f"#{step.index}  [{color}]{step.status}[/]")
    table.add_row("action", Text(network_request(step) or describe(step.action)))
    if step.target_element is not None:
        table.add_row("target", Text(describe_target(step.target_element)))
    if step.validation_error:
        table.add_row("invalid", Text(step.validation_error))
    if step.decision_effect:
        rules = ", ".join(step.rule_ids) or "default deny"
        table.add_row("decision", Text(f"{step.decision_effect} ({rules})"))
        table.add_row("reason", Text(step.decision_reason or ""))
    table.add_row("approval", Text(_approval_line(step)))
    if step.error:
        table.add_row("error", Text(step.error, style="red"))
    if step.timings_ms:
        table.add_row("timings", ", ".join(f"{k} {v:.0f} ms" for k, v in step.timings_ms.items()))
    if step.usage:
        table.add_row("tokens", f"{step.usage.get('input_tokens', 0)} in / "
                                f"{step.usage.get('output_tokens', 0)} out")
    return table


def _approval_line(step: StepRecord) -> str:
    approval = step.approval
    if approval is None:
        return "not asked"
    if approval.answer is None:
        return approval.status
    verdict = "approved" if approval.answer.approved else "denied"
    return (f"{verdict} by {approval.answer.approver} via {approval.answer.channel} "
            f"({approval.answer.scope})")


def _attempt_text(attempt: NetworkAttempt) -> Text:
    color = {"allowed": "green", "denied": "red", "refused": "red"}.get(attempt.outcome, "yellow")
    return Text(f"+{attempt.at_s:.1f}s {attempt.text}", style=color)


def session_header(session: SessionRecord) -> Text:
    started = datetime.fromtimestamp(session.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Text.assemble(
        (f"session {session.id[:12]}", "bold"), f"  {started}  ",
        (session.outcome or "running", STATUS_COLORS.get(session.outcome or "", "cyan")),
        f"\n{session.task}\nplanner {session.planner} {session.model}  policy "
        f"{session.policy_name} ({session.policy_sha256[:12]})  sandbox {session.sandbox_kind} "
        f"{session.screen_width}x{session.screen_height}",
    )


MARK_STYLES = {"checkpoint": "cyan", "skipped": "yellow", "rollback": "magenta",
               "refused": "yellow"}


def undo_rows(events: list[EventRecord],
              steps: list[StepRecord]) -> dict[int, list[tuple[str, Text]]]:
    """Checkpoint and rollback rows (label, text) by step position, for the replay."""
    rows: dict[int, list[tuple[str, Text]]] = {}
    for mark in undo_marks(events, steps):
        label = "checkpoint" if mark.kind in ("checkpoint", "skipped") else "rollback"
        rows.setdefault(mark.position, []).append(
            (label, Text(mark.text, style=MARK_STYLES[mark.kind])))
    return rows


class TerminalReplay:
    """Shows a recorded session step by step on a rich console."""

    def __init__(self, log: AuditLog, session_id: str, console: Console, *,
                 columns: int | None = None) -> None:
        self.log = log
        self.session = log.get_session(session_id)
        self.steps = log.steps(self.session.id)
        events = log.events(self.session.id)
        self.network = network_attempts(events, self.steps, self.session.started_at)
        self.selfcheck = selfcheck_line(events)
        self.notes = run_notes(events)
        self.undo_rows = undo_rows(events, self.steps)
        self.console = console
        self.columns = columns or max(40, min(160, console.width - 50))

    def render(self, position: int, *, keys_hint: bool = False) -> RenderableType:
        """The screen for step number ``position`` (0-based in the recorded order)."""
        step = self.steps[position]
        layout = Table.grid(padding=(0, 2))
        details = step_details(step)
        for attempt in self._attempts_at(position):
            details.add_row("network", _attempt_text(attempt))
        for label, text in self.undo_rows.get(position, []):
            details.add_row(label, text)
        layout.add_row(self._picture(step), details)
        title = f"{position + 1}/{len(self.steps)}"
        return Panel(layout, title=title,
                     subtitle="n next  p previous  q quit" if keys_hint else None)

    def _attempts_at(self, position: int) -> list[NetworkAttempt]:
        """Connections made during this step (the first step also shows earlier ones)."""
        return [a for a in self.network if a.position == position
                or (position == 0 and a.position < 0)]

    def _picture(self, step: StepRecord) -> RenderableType:
        frame_sha = step.frame_before_sha256 or step.frame_after_sha256
        if not frame_sha or not self.log.has_frame(frame_sha):
            return Text("(no frame recorded)")
        if self.console.color_system is None:  # blocks without colour show nothing
            return Text(f"frame {frame_sha[:12]}")
        image = draw_marks(self.log.get_frame_image(frame_sha),
                           marks_for(step.action, step.target_element))
        return frame_as_blocks(image, self.columns)

    def print_all(self) -> None:
        """Non-interactive: the header, then every step."""
        self.console.print(session_header(self.session))
        if self.selfcheck:
            self.console.print(self.selfcheck)
        for note in self.notes:
            self.console.print(Text(f"note: {note}", style="dim"))
        if not self.steps:
            self.console.print("(no steps)")
            for attempt in self.network:
                self.console.print(Text.assemble("network  ", _attempt_text(attempt)))
        for position in range(len(self.steps)):
            self.console.print(self.render(position))

    def interactive(self, read_key: Callable[[], str]) -> None:
        """Step with n/p (or arrows, space), q to quit."""
        position = 0
        while self.steps:
            self.console.clear()
            self.console.print(Group(session_header(self.session),
                                     self.render(position, keys_hint=True)))
            key = read_key()
            if key in {"q", "\x1b", "\x03", ""}:
                return
            position = _move(position, key, len(self.steps))


def _move(position: int, key: str, count: int) -> int:
    if key in {"n", " ", "l", "\r", "\n", "RIGHT", "DOWN"}:
        return min(count - 1, position + 1)
    if key in {"p", "b", "h", "LEFT", "UP"}:
        return max(0, position - 1)
    if key == "g":
        return 0
    if key == "G":
        return count - 1
    return position


@contextlib.contextmanager
def raw_keys(stream: int | None = None) -> Iterator[Callable[[], str]]:
    """A key reader for a terminal in raw mode; arrow keys come back as names."""
    descriptor = sys.stdin.fileno() if stream is None else stream
    saved = termios.tcgetattr(descriptor)
    tty.setcbreak(descriptor)
    try:
        yield lambda: _read_key(descriptor)
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _read_key(descriptor: int) -> str:
    key = os.read(descriptor, 1).decode(errors="replace")
    if key != "\x1b":
        return key
    sequence = os.read(descriptor, 2).decode(errors="replace")
    return {"[A": "UP", "[B": "DOWN", "[C": "RIGHT", "[D": "LEFT"}.get(sequence, "\x1b")


# -- running it again ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StepDiff:
    """How the frame after a re-run step compares with the recorded one.

    ``changed_share`` is the fraction of pixels that differ; ``mean_abs_diff``
    the mean absolute difference per channel (0-255).  ``skipped`` says why a
    step was not run again.
    """

    index: int
    step_id: int
    action: str
    changed_share: float = 0.0
    mean_abs_diff: float = 0.0
    skipped: str = ""

    @property
    def identical(self) -> bool:
        return not self.skipped and self.changed_share == 0.0


def rerun(log: AuditLog, session_id: str, sandbox: Sandbox) -> list[StepDiff]:
    """Run the session's executed actions on ``sandbox`` (started, fresh) and diff frames."""
    diffs = []
    for step in log.steps(log.get_session(session_id).id):
        if step.status != "done" or step.action is None:
            continue
        diffs.append(_rerun_step(log, step, sandbox))
    return diffs


def _rerun_step(log: AuditLog, step: StepRecord, sandbox: Sandbox) -> StepDiff:
    label = describe(step.action)
    if step.secret:
        return StepDiff(step.index, step.id, label, skipped="secret text is not stored")
    assert step.action is not None  # rerun() passes only steps with an action
    result = sandbox.execute(step.action)
    if step.frame_after_sha256 is None or not log.has_frame(step.frame_after_sha256):
        return StepDiff(step.index, step.id, label, skipped="no recorded frame to compare")
    share, mean = frame_difference(log.get_frame_image(step.frame_after_sha256),
                                   open_png(result.frame.png))
    return StepDiff(step.index, step.id, label, changed_share=share, mean_abs_diff=mean)


def frame_difference(recorded: Image.Image, fresh: Image.Image) -> tuple[float, float]:
    """(share of differing pixels, mean absolute difference per channel)."""
    if recorded.size != fresh.size:
        return 1.0, 255.0
    difference = ImageChops.difference(recorded.convert("RGB"), fresh.convert("RGB"))
    channels = difference.split()
    total = recorded.width * recorded.height
    mean = sum(_channel_sum(channel) for channel in channels) / (total * 3)
    strongest = ImageChops.lighter(ImageChops.lighter(channels[0], channels[1]), channels[2])
    changed = strongest.point(lambda v: 255 if v else 0).histogram()[255]
    return changed / total, mean


def _channel_sum(channel: Image.Image) -> int:
    return sum(value * count for value, count in enumerate(channel.histogram()))
