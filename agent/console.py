"""Plain-terminal progress for ``deskhand run``: one line per step and a summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from agent.loop import RunSummary, StepReport
from agent.planners.base import Turn
from sandbox.base import Frame

_EFFECT_STYLE = {"allow": "green", "ask": "yellow", "deny": "red", "invalid": "magenta"}
_STATUS_STYLE = {"done": "green", "denied": "red", "invalid": "magenta", "error": "red"}


class ConsoleReporter:
    """Prints each step as it finishes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_step(self, report: StepReport) -> None:
        effect = _EFFECT_STYLE.get(report.effect, "white")
        status = _STATUS_STYLE.get(report.status, "white")
        settle = f" settle {report.settle_ms:.0f}" if report.settle_ms is not None else ""
        who = f" by {report.approver}" if report.approver else ""
        why = "" if report.status == "done" else f"  [dim]{escape(report.reason)}[/]"
        self.console.print(
            f"  #{report.index:<3} {escape(report.description):<44} "
            f"[{effect}]{report.effect:<7}[/] [{status}]{report.status:<7}[/]"
            f"{report.elapsed_ms:6.0f} ms{settle}{who}{why}",
            highlight=False,
        )

    def on_turn(self, turn: Turn) -> None:
        if turn.message and turn.finished is None:
            self.console.print(f"  [dim]planner: {escape(turn.message)}[/]", highlight=False)

    def on_frame(self, frame: Frame) -> None:
        pass


def print_summary(console: Console, summary: RunSummary, *, strict: bool = False) -> None:
    style = "green" if summary.ok else "red"
    cost = f", ${summary.cost_usd:.4f}" if summary.cost_usd else ""
    console.print(
        f"[{style}]{summary.outcome}[/]: {escape(summary.reason)}\n"
        f"  {summary.steps} steps: {summary.executed} ran, {summary.denied} denied, "
        f"{summary.invalid} invalid, {summary.errors} failed in {summary.duration_s:.1f} s"
        f"{cost}; session {summary.session_id}",
        highlight=False,
    )
    if summary.ok and not summary.clean:
        console.print(f"[yellow]note:[/] {_troubles(summary)} on the way"
                      + ("; --strict: exit 1" if strict else " (--strict makes this exit 1)"),
                      highlight=False)


def _troubles(summary: RunSummary) -> str:
    parts = [f"{count} step{'s' if count != 1 else ''} {what}"
             for count, what in ((summary.invalid, "invalid"), (summary.denied, "denied"))
             if count]
    return " and ".join(parts)
