"""Start a task from the TUI, wired exactly like ``deskhand run``.

:func:`prepare_run` builds the planner and loads the policy on the UI thread,
so a bad script or policy is reported on the task screen at once.
:func:`execute_run` runs in a Textual worker thread: it opens its own audit
log connection and the sandbox, and drives the :class:`~agent.loop.AgentLoop`
with a :class:`~agent.approvals.BrokerApprover` and no terminal prompt — the
approval queue answers through the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from agent import runs
from agent.approvals import ApprovalRequest, Approver
from agent.loop import Reporter, RunSummary
from agent.registry import PLANNERS as PLANNER_KINDS
from agent.registry import SANDBOXES as SANDBOX_KINDS
from agent.runs import RunPlan, RunServices
from agent.settings import Settings
from audit.records import ApprovalAnswer

# The choices the task screen offers: exactly the registered kinds.
PLANNERS: tuple[str, ...] = PLANNER_KINDS.names()
SANDBOXES: tuple[str, ...] = ("auto", *SANDBOX_KINDS.names())

__all__ = ["PLANNERS", "SANDBOXES", "RunControl", "RunPlan", "RunRequest", "RunServices",
           "WatchedApprover", "execute_run", "prepare_run"]


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the task screen asks for."""

    task: str
    planner: str = "script"
    script: Path | None = None
    policy: str = "default"
    sandbox: str = "auto"
    model: str = ""
    base_url: str = ""
    max_cost_usd: float | None = None


@dataclass(slots=True)
class RunControl:
    """Shared between the UI and the run's thread: how to stop it.

    ``waiting_session`` is set while the loop waits for an approval, so that
    stopping can deny it instead of waiting out its timeout.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    waiting_session: str | None = None
    reason: str = "stopped by the user"
    session_id: str | None = None
    """The run's audit session, once the loop has recorded it."""


class WatchedApprover:
    """Passes requests to ``inner`` and notes which session is waiting for one."""

    def __init__(self, inner: Approver, control: RunControl) -> None:
        self.inner = inner
        self.control = control

    def request(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        if self.control.stop.is_set():
            return None
        self.control.waiting_session = request.session_id
        try:
            return self.inner.request(request)
        finally:
            self.control.waiting_session = None


def prepare_run(request: RunRequest, settings: Settings) -> RunPlan:
    """Build the planner and load the policy; raises on a bad request."""
    chosen = settings.with_overrides(planner=request.planner, policy=request.policy or None,
                                     sandbox=request.sandbox, model=request.model or None,
                                     base_url=request.base_url or None,
                                     max_cost_usd=request.max_cost_usd)
    return runs.plan_run(chosen, task=request.task, script=request.script)


def execute_run(prepared: RunPlan, services: RunServices, reporter: Reporter,
                control: RunControl, note: runs.Note | None = None) -> RunSummary:
    """Open the log and the sandbox, run the task, close both (worker thread); the run's
    notes (the sandbox it chose, what the element sources cannot read) go to ``note``."""
    options = runs.RunOptions(
        reporter=reporter, services=services, should_stop=control.stop.is_set,
        note=note or (lambda _text: None),
        stop_reason=lambda: control.reason,
        wrap_approver=lambda inner: WatchedApprover(inner, control))
    with runs.open_run(prepared, options) as run:
        tell_egress = run.loop.on_session

        def on_session(session_id: str) -> None:
            control.session_id = session_id
            tell_egress(session_id)

        run.loop.on_session = on_session
        return run.loop.run(prepared.task)
