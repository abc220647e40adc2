"""The live session: the sandbox's screen, the step timeline, the cost meter
and the approval queue, while a task runs in a worker thread."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from agent.loop import RunSummary
from agent.runs import run_network_rules
from audit.errors import AuditError
from policies.network import NetworkRules
from tui.imaging import decode_png
from tui.run_messages import (
    FrameCaptured,
    RunFinished,
    RunNoted,
    StepReported,
    TuiReporter,
    TurnPlanned,
)
from tui.runner import RunControl, RunPlan, RunServices, execute_run
from tui.screens.approving import ApprovingScreen
from tui.step_undo import StepUndo, UndoTarget
from tui.store import TuiStore
from tui.widgets.approval_history import ApprovalHistory
from tui.widgets.approval_queue import ApprovalQueue, Approver
from tui.widgets.badges import outcome_text
from tui.widgets.cost_meter import CostMeter
from tui.widgets.frame_view import Picture, make_frame_view
from tui.widgets.timeline import StepTimeline

# What `x` and Ctrl-Q say while a run is stopping: an action already sent to
# the sandbox finishes first (up to its deadline), then the run ends.
STOPPING_NOTICE = "waiting for the current step to finish, then the run stops"


def network_label(rules: NetworkRules) -> str:
    """``network: off``, ``network: allowlist (3 hosts, 1 denied)`` or ``network: full``."""
    if rules.mode != "allowlist":
        return f"network: {rules.mode}"
    allowed, denied = len(rules.allow) + len(rules.extra_allow), len(rules.deny)
    text = f"network: allowlist ({allowed} allowed"
    return text + (f", {denied} denied)" if denied else ")")


class LiveScreen(ApprovingScreen):
    """Watch one run and answer its approvals."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "stop_run", "Stop run"),
        Binding("u", "undo_step", "Undo step"),
        Binding("escape", "leave", "Back"),
    ]

    def __init__(self, store: TuiStore, approver: Approver, *, prepared: RunPlan | None,
                 services: RunServices | None = None, graphics: str = "halfblock",
                 poll_s: float = 0.2) -> None:
        super().__init__()
        self.store = store
        self.approver = approver
        self.prepared = prepared
        self.services = services or RunServices()
        self.graphics = graphics
        self.poll_s = poll_s
        self.control = RunControl()
        self.summary: RunSummary | None = None
        self.worker: Worker[RunSummary] | None = None
        self.undo = StepUndo(self, store, on_answer=self.refresh_marks)
        self._described: dict[int, str] = {}
        self.notes: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="live-main"):
            yield make_frame_view(self.graphics, id="live-frame", placeholder="starting…")
            with Vertical(id="live-side"):
                yield Static(id="run-status")
                yield Static(id="network-mode", classes="idle")
                yield Static(id="run-notes", classes="idle")
                yield CostMeter(id="cost-meter")
                yield StepTimeline(id="timeline")
                yield Static("approval history — u undoes the highlighted step",
                             id="history-title")
                yield ApprovalHistory(self.store, id="approval-history")
        yield ApprovalQueue(self.store, self.approver, poll_s=self.poll_s,
                            graphics=self.graphics, id="approval-queue")
        yield Footer()

    def on_mount(self) -> None:
        if self.prepared is not None:
            self.show_running(self.prepared.task)
            self.show_network(network_label(run_network_rules(self.prepared)))
            self.worker = self.run_worker(self._run, thread=True, exit_on_error=False,
                                          group="run", name="agent-loop")

    def _run(self) -> RunSummary:
        assert self.prepared is not None
        reporter = TuiReporter(self.app, self, self.control.stop)
        return execute_run(self.prepared, self.services, reporter, self.control,
                           note=reporter.note)

    # -- run events --------------------------------------------------------------

    def on_step_reported(self, message: StepReported) -> None:
        # Marks first: a rollback the run served before this step belongs above its row.
        self.refresh_marks()
        self._described[message.report.index] = message.report.description
        self.query_one(StepTimeline).add_report(message.report)

    def on_run_noted(self, message: RunNoted) -> None:
        """Keep the run's notes in view under its status (each once)."""
        if message.text in self.notes:
            return
        self.notes.append(message.text)
        notes = self.query_one("#run-notes", Static)
        notes.update(Text("\n".join(self.notes)))
        notes.remove_class("idle")

    def on_approval_queue_answered(self, _message: ApprovalQueue.Answered) -> None:
        self.refresh_marks()

    def refresh_marks(self) -> None:
        """Show the run's checkpoints and rollbacks on the timeline, and its answered
        approvals in the history."""
        session_id = self.control.session_id
        if session_id is None:
            return
        try:
            marks = self.store.undo_marks(session_id)
            self.query_one(ApprovalHistory).show_sessions([session_id])
        except AuditError as exc:
            self.notify(f"cannot read the audit log: {exc}", severity="warning")
            return
        self.query_one(StepTimeline).show_marks(marks)

    def on_frame_captured(self, message: FrameCaptured) -> None:
        frame = message.frame
        image = message.image if message.image is not None else decode_png(frame.png)
        picture = Picture(key=frame.sha256, image=image)
        self.query_one("#live-frame").show(picture)  # type: ignore[attr-defined]

    def on_turn_planned(self, message: TurnPlanned) -> None:
        self.query_one(CostMeter).add_usage(message.turn.usage)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker: Worker[Any] = event.worker
        if worker is not self.worker:
            return
        if event.state == WorkerState.SUCCESS:
            self.post_message(RunFinished(worker.result))
        elif event.state == WorkerState.ERROR:
            self.post_message(RunFinished(None, f"{type(worker.error).__name__}: "
                                                f"{worker.error}"))

    def on_run_finished(self, message: RunFinished) -> None:
        self.summary = message.summary
        if message.summary is None:
            self._status(Text("error", style="bold red"), message.error)
            return
        summary = message.summary
        self._status(outcome_text(summary.outcome),
                     f"{summary.reason} — {summary.steps} steps: {summary.executed} ran, "
                     f"{summary.denied} denied, {summary.invalid} invalid")

    def show_running(self, task: str) -> None:
        """Say that ``task`` is running."""
        self.sub_title = task
        self._status(Text("running", style="cyan"), task)

    def show_network(self, label: str) -> None:
        """Say what the desktop may reach (off, allowlist of N entries, full)."""
        mode = self.query_one("#network-mode", Static)
        mode.update(label)
        mode.remove_class("idle")

    def _status(self, badge: Text, detail: str) -> None:
        self.query_one("#run-status", Static).update(Text.assemble(badge, "  ", detail))

    # -- actions -----------------------------------------------------------------

    def action_stop_run(self) -> None:
        """Stop the run: the loop ends it as interrupted at the next step."""
        if self.running:
            self.notify(STOPPING_NOTICE, title="stopping")
        self.stop_run()

    def action_undo_step(self) -> None:
        """Undo the highlighted step (the approval history's when it has the focus, else the
        timeline's): confirm, then the run puts the files back."""
        self.undo.ask(self._undo_target())

    def _undo_target(self) -> UndoTarget | None:
        history = self.query_one(ApprovalHistory)
        if self.focused is history:
            return history.target_at_cursor()
        index = self.query_one(StepTimeline).step_at_cursor()
        session_id = self.control.session_id
        if index is None or session_id is None:
            return None
        return UndoTarget(session_id, index, self._described.get(index, "?"))

    def action_leave(self) -> None:
        self.stop_run()
        self.app.pop_screen()

    @property
    def running(self) -> bool:
        """True while the run's thread has not returned (whatever Textual calls it)."""
        return self.worker is not None and not self.worker.is_finished

    def stop_run(self, reason: str | None = None) -> None:
        """Ask the run to stop, denying the approval it waits for if any; ``reason``
        is what its session records (a signal's name), else "stopped by the user"."""
        if self.worker is None:
            return
        if reason is not None and not self.control.stop.is_set():
            self.control.reason = reason
        self.control.stop.set()
        waiting = self.control.waiting_session
        if waiting is not None:
            self.store.deny_waiting(waiting, approver=self.approver.name,
                                    channel=self.approver.channel)

    def on_unmount(self) -> None:
        self.stop_run()
