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
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, get_args

from agent import assemble
from agent.approvals import ApprovalRequest, Approver, BrokerApprover, BrokerLog
from agent.errors import ConfigError
from agent.loop import (
    AgentLoop,
    AuditRecorder,
    LoopConfig,
    Perceiver,
    PolicyEngine,
    Reporter,
    RunSummary,
)
from agent.planners.base import Planner
from agent.settings import SandboxKind, Settings
from audit.records import ApprovalAnswer
from sandbox.base import Sandbox

# The choices the settings accept, so the task screen offers exactly those.
PLANNERS: tuple[str, ...] = get_args(Settings.model_fields["planner"].annotation)
SANDBOXES: tuple[str, ...] = get_args(SandboxKind)


class RunLog(AuditRecorder, BrokerLog, Protocol):
    """What a run needs of the audit log: the recorder and the approval broker."""


SandboxFactory = Callable[[str, Settings], Sandbox]
LogOpener = Callable[[Path, list[str]], AbstractContextManager[RunLog]]


def default_sandbox_factory(kind: str, settings: Settings) -> Sandbox:
    """Build the sandbox the way ``deskhand run`` does."""
    return assemble.make_sandbox(kind, settings)


def default_log_opener(path: Path, redact: list[str]) -> AbstractContextManager[RunLog]:
    """Open the audit log the way ``deskhand run`` does."""
    from audit.log import AuditLog

    return AuditLog.open(path, redact=redact)


@dataclass(frozen=True, slots=True)
class RunServices:
    """The clients a run is built from; tests pass their own sandbox factory."""

    make_sandbox: SandboxFactory = default_sandbox_factory
    open_log: LogOpener = default_log_opener


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


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A request with its planner built and its policy loaded."""

    task: str
    planner: Planner
    policy: PolicyEngine
    settings: Settings
    perceiver: Perceiver | None = None


@dataclass(slots=True)
class RunControl:
    """Shared between the UI and the run's thread: how to stop it.

    ``waiting_session`` is set while the loop waits for an approval, so that
    stopping can deny it instead of waiting out its timeout.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    waiting_session: str | None = None
    reason: str = "stopped by the user"


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


def prepare_run(request: RunRequest, settings: Settings) -> PreparedRun:
    """Build the planner and load the policy; raises on a bad request."""
    if request.planner not in PLANNERS:
        raise ConfigError(f"unknown planner {request.planner!r}")
    if request.sandbox not in SANDBOXES:
        raise ConfigError(f"unknown sandbox {request.sandbox!r}")
    chosen = settings.with_overrides(planner=request.planner, policy=request.policy or None,
                                     sandbox=request.sandbox, model=request.model or None,
                                     base_url=request.base_url or None,
                                     max_cost_usd=request.max_cost_usd)
    perception = assemble.make_perception(chosen)
    planner = assemble.make_planner(chosen, request.script, locator=perception)
    task = request.task.strip() or _script_task(planner)
    if not task:
        raise ConfigError("say what to do: a task, or a script that brings one")
    policy = assemble.load_policy_named(chosen.policy)
    return PreparedRun(task=task, planner=planner, policy=policy, settings=chosen,
                       perceiver=assemble.loop_perceiver(planner, perception))


def _script_task(planner: Planner) -> str:
    script = getattr(planner, "script", None)
    return str(getattr(planner, "task", None) or getattr(script, "task", "") or "")


def execute_run(prepared: PreparedRun, services: RunServices, reporter: Reporter,
                control: RunControl) -> RunSummary:
    """Open the log and the sandbox, run the task, close both (worker thread)."""
    settings = prepared.settings
    kind = assemble.choose_sandbox_kind(settings, lambda _note: None)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    with services.open_log(settings.db_path, settings.secrets()) as log, \
            services.make_sandbox(kind, settings) as box:
        loop = AgentLoop(
            sandbox=box, planner=prepared.planner, policy=prepared.policy, audit=log,
            approver=WatchedApprover(BrokerApprover(log, prompt=None), control),
            reporter=reporter, config=loop_config(settings),
            session_extra=assemble.session_extra(box, settings),
            should_stop=control.stop.is_set, stop_reason=lambda: control.reason,
            perceiver=prepared.perceiver,
        )
        return loop.run(prepared.task)


def loop_config(settings: Settings) -> LoopConfig:
    """The loop's limits from settings, as ``deskhand run`` sets them."""
    return LoopConfig(max_turns=settings.max_steps,
                      approval_timeout_s=settings.approval_timeout_s,
                      action_deadline_s=settings.action_deadline_s,
                      max_cost_usd=settings.max_cost_usd)
