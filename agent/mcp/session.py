"""One desktop per MCP session: the agent loop in a worker thread, fed by tool calls.

The MCP client is the planner.  :class:`QueuePlanner` implements the
planner seam by taking :class:`~agent.mcp.requests.ToolRequest` objects from
a queue; the ordinary :class:`~agent.loop.AgentLoop` runs them through the
whole step pipeline, so validation, policy, audit, approvals (deskhand's own
broker on the audit database, never the client) and settling are exactly
those of ``deskhand run``.  Each call gets a :class:`Ticket` the server
awaits; a call that outlives the client's patience while a human decides is
collected later by ticket (``await_approval``).

The sandbox starts on first use and is removed when the session closes
(:meth:`DesktopSession.close`), or, for whatever is still open when the
server exits, by :meth:`Desktops.close_all`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from agent.approvals import BrokerApprover, TerminalPrompt
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.mcp.requests import Reply, Settled, StepTrace, ToolRequest
from agent.mcp.run import RunParts, ScreenOnlyPerception
from agent.mcp.screen import ScreenSpace
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn, Usage
from audit.log import AuditLog
from audit.records import ApprovalAnswer, ApprovalRecord, Outcome, ResultStatus, Scope, SessionInfo
from policies.decision import Decision
from sandbox.base import Frame, Sandbox, Viewer

log = logging.getLogger("deskhand.mcp")

# How long closing a session waits for its worker to remove the sandbox.
CLOSE_TIMEOUT_S = 60.0
# How often an approval wait looks for an answer or for the session closing.
APPROVAL_POLL_S = 0.1


class SessionEnded(RuntimeError):
    """The session's desktop is gone (closed, failed, or out of budget); the message says why."""


@dataclass(frozen=True, slots=True)
class ApprovalAsked:
    """A step of a ticket waits for a human."""

    approval_id: int
    summary: str
    rule_ids: tuple[str, ...]
    reason: str
    timeout_s: float
    asked_at: float


@dataclass(eq=False)
class Ticket:
    """One tool call in flight; its reply arrives in ``future``."""

    id: str
    tool: str
    future: Future[Reply] = field(default_factory=Future)
    approval: ApprovalAsked | None = None

    @property
    def done(self) -> bool:
        return self.future.done()

    def resolve(self, reply: Reply) -> None:
        if not self.future.done():
            self.future.set_result(reply)


@dataclass(frozen=True, slots=True)
class Job:
    request: ToolRequest
    ticket: Ticket


# -- the log the loop writes to -----------------------------------------------------


class ObservedLog:
    """The audit log, seen by the session: remembers each step's intent and approval.

    It is what the loop writes to (``AuditRecorder``) and what the broker
    approver asks through (``BrokerLog``); every call goes to the real log.
    Approval waits also end early, as a denial, when the session closes.
    """

    def __init__(self, log: AuditLog, *, on_approval: Callable[[ApprovalAsked], None],
                 closing: threading.Event) -> None:
        self.log = log
        self.session_id = ""
        self._on_approval = on_approval
        self._closing = closing
        self._trace: StepTrace | None = None

    def take_trace(self) -> StepTrace | None:
        trace, self._trace = self._trace, None
        return trace

    def start_session(self, info: SessionInfo) -> str:
        self.session_id = self.log.start_session(info)
        return self.session_id

    def put_frame(self, frame: Frame) -> str:
        return self.log.put_frame(frame)

    def record_intent(self, session_id: str, *, index: int, action: dict[str, Any] | None,
                      proposed_raw: object, validation_error: str | None,
                      decision: Decision | None, frame_before_sha256: str | None,
                      secret: bool) -> int:
        step_id = self.log.record_intent(
            session_id, index=index, action=action, proposed_raw=proposed_raw,
            validation_error=validation_error, decision=decision,
            frame_before_sha256=frame_before_sha256, secret=secret)
        self._trace = StepTrace(step_id=step_id, index=index, decision=decision)
        return step_id

    def record_result(self, step_id: int, *, status: ResultStatus, output: dict[str, Any],
                      error: str | None, frame_after_sha256: str | None,
                      timings_ms: dict[str, float], usage: Usage | None = None) -> None:
        self.log.record_result(step_id, status=status, output=output, error=error,
                               frame_after_sha256=frame_after_sha256, timings_ms=timings_ms,
                               usage=usage)

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        self.log.record_event(session_id, kind, data)

    def end_session(self, session_id: str, *, outcome: Outcome, reason: str) -> None:
        self.log.end_session(session_id, outcome=outcome, reason=reason)

    def request_approval(self, step_id: int, *, frame_sha256: str, summary: str,
                         rule_ids: tuple[str, ...] | list[str], reason: str,
                         timeout_s: float) -> int:
        approval_id = self.log.request_approval(
            step_id, frame_sha256=frame_sha256, summary=summary, rule_ids=rule_ids,
            reason=reason, timeout_s=timeout_s)
        if self._trace is not None and self._trace.step_id == step_id:
            self._trace = replace(self._trace, approval_id=approval_id)
        self._on_approval(ApprovalAsked(approval_id, summary, tuple(rule_ids), reason,
                                        timeout_s, time.monotonic()))
        return approval_id

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool:
        return self.log.answer_approval(approval_id, approved=approved, scope=scope,
                                        approver=approver, channel=channel)

    def wait_for_answer(self, approval_id: int, *, timeout_s: float,
                        poll_s: float = 0.05) -> ApprovalAnswer | None:
        if timeout_s <= 0:
            return self.log.wait_for_answer(approval_id, timeout_s=0)
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up and not self._closing.is_set():
            record = self.log.approval(approval_id)
            if record.status != "pending":
                return record.answer
            self._closing.wait(min(APPROVAL_POLL_S, max(0.0, give_up - time.monotonic())))
        # A short positive wait closes the request as expired unless an answer beat it.
        return self.log.wait_for_answer(approval_id, timeout_s=0.001)

    def approval(self, approval_id: int) -> ApprovalRecord:
        return self.log.approval(approval_id)


# -- the planner fed by tool calls ----------------------------------------------------

_ENDED = None


class QueuePlanner:
    """A planner whose turns are the MCP client's tool calls, one action per turn."""

    name = "mcp"

    def __init__(self, inbox: queue.Queue[Job | None], log: ObservedLog, *, client: str) -> None:
        self.model = client
        self._inbox = inbox
        self._log = log
        self._job: Job | None = None

    @property
    def current(self) -> Ticket | None:
        return self._job.ticket if self._job else None

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        step: ProposedAction | Reply | None = None
        if self._job is not None:
            step = self._settle(self._job, observation.frame, outcomes)
        while not isinstance(step, ProposedAction):
            if self._job is not None and step is not None:
                self._job.ticket.resolve(step)
            self._job = self._inbox.get()
            if self._job is _ENDED:
                return Turn(finished="done", message="the MCP client ended the session")
            step = _guard(self._job, lambda job: job.request.start(observation.frame))
        return Turn(actions=[self._stamp(step)])

    def _settle(self, job: Job, frame: Frame,
                outcomes: list[ActionOutcome]) -> ProposedAction | Reply:
        trace = self._log.take_trace()
        approval = (self._log.approval(trace.approval_id)
                    if trace is not None and trace.approval_id is not None else None)
        settled = Settled(outcome=outcomes[0] if outcomes else None, frame=frame, trace=trace,
                          approval=approval)
        job.ticket.approval = None
        return _guard(job, lambda j: j.request.advance(settled))

    def _stamp(self, proposed: ProposedAction) -> ProposedAction:
        """The step's raw record names the client, the tool, its arguments and the ticket."""
        assert self._job is not None
        request, ticket = self._job.request, self._job.ticket
        raw = {"mcp": {"client": self.model, "tool": request.tool,
                       "arguments": request.arguments, "ticket": ticket.id}}
        return replace(proposed, raw=raw, call_id=ticket.id)


def _guard(job: Job, work: Callable[[Job], ProposedAction | Reply]) -> ProposedAction | Reply:
    """``work``, with a failure of the request's own code answered as a tool error."""
    try:
        return work(job)
    except Exception as exc:  # a request's bug must fail its call, not the session
        log.exception("tool %s failed", job.request.tool)
        return Reply(f"{job.request.tool} failed: {exc}", {"status": "error"}, error=True)


# -- one session's desktop ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How every session's loop runs."""

    task: str
    max_turns: int
    approval_timeout_s: float
    action_deadline_s: float
    prompt: TerminalPrompt | None = None


RunOpener = Callable[[], AbstractContextManager[RunParts]]


class DesktopSession:
    """The desktop of one MCP session, started on first use, removed on close."""

    def __init__(self, open_run: RunOpener, options: SessionOptions, *, client: str) -> None:
        self.client = client
        self._open_run = open_run
        self._options = options
        self._inbox: queue.Queue[Job | None] = queue.Queue()
        self._closing = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tickets: dict[str, Ticket] = {}
        self._numbers = itertools.count(1)
        self._ended: str | None = None
        self._planner: QueuePlanner | None = None
        self._parts: RunParts | None = None
        self._log: ObservedLog | None = None
        self.space: ScreenSpace | None = None

    # -- life --------------------------------------------------------------------

    def ensure_started(self) -> ScreenSpace:
        """Start the desktop if it is not running; blocks until it is ready (or failed)."""
        with self._lock:
            if self._closing.is_set():
                raise SessionEnded("the MCP session is closing")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="deskhand-mcp-session")
                self._thread.start()
        self._ready.wait()
        if self.space is None:
            raise SessionEnded(self._ended or "the desktop did not start")
        return self.space

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """End the loop and remove the sandbox; pending approvals are denied."""
        self._closing.set()
        self._inbox.put(_ENDED)
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("the desktop of session %s did not stop in %gs", self.session_id,
                          timeout_s)

    @property
    def started(self) -> bool:
        return self.space is not None

    @property
    def session_id(self) -> str:
        return self._log.session_id if self._log else ""

    @property
    def viewer(self) -> Viewer | None:
        return self._parts.sandbox.viewer if self._parts else None

    @property
    def sandbox(self) -> Sandbox | None:
        """The running sandbox (the last one, once the session ended)."""
        return self._parts.sandbox if self._parts else None

    @property
    def sandbox_kind(self) -> str:
        return self._parts.sandbox.kind if self._parts else ""

    @property
    def ended(self) -> str | None:
        return self._ended

    # -- calls -------------------------------------------------------------------

    def submit(self, build: Callable[[ScreenSpace], ToolRequest], tool: str) -> Ticket:
        """Queue a tool call; its reply arrives on the returned ticket."""
        space = self.ensure_started()
        if self._ended is not None:
            raise SessionEnded(self._ended)
        ticket = Ticket(id=f"t{next(self._numbers)}", tool=tool)
        self._tickets[ticket.id] = ticket
        self._inbox.put(Job(build(space), ticket))
        if self._ended is not None:  # the loop ended while this call was being queued
            self._fail_outstanding()
        return ticket

    def ticket(self, ticket_id: str) -> Ticket | None:
        return self._tickets.get(ticket_id)

    def forget(self, ticket: Ticket) -> None:
        self._tickets.pop(ticket.id, None)

    def tickets(self) -> Iterator[Ticket]:
        return iter(list(self._tickets.values()))

    # -- the worker --------------------------------------------------------------

    def _work(self) -> None:
        try:
            with self._open_run() as parts:
                summary = self._drive(parts)
                self._ended = f"the desktop session ended: {summary.reason}"
        except Exception as exc:  # start-up or crash: every caller hears why
            log.exception("desktop session failed")
            self._ended = f"the desktop failed: {exc}"
        finally:
            self._ready.set()
            self._fail_outstanding()

    def _drive(self, parts: RunParts) -> RunSummary:
        self._parts = parts
        self._log = ObservedLog(parts.log, on_approval=self._note_approval,
                                closing=self._closing)
        self._planner = QueuePlanner(self._inbox, self._log, client=self.client)
        options = self._options
        loop = AgentLoop(
            sandbox=parts.sandbox, planner=self._planner, policy=parts.policy, audit=self._log,
            approver=BrokerApprover(self._log, prompt=options.prompt),
            config=LoopConfig(max_turns=options.max_turns,
                              approval_timeout_s=options.approval_timeout_s,
                              action_deadline_s=options.action_deadline_s),
            perceiver=ScreenOnlyPerception(parts.perception) if parts.perception else None,
            session_extra={**parts.session_extra, "mcp_client": self.client},
        )
        self.space = ScreenSpace(parts.sandbox.size)
        self._ready.set()
        return loop.run(options.task)

    def _note_approval(self, asked: ApprovalAsked) -> None:
        ticket = self._planner.current if self._planner else None
        if ticket is not None:
            ticket.approval = asked

    def _fail_outstanding(self) -> None:
        reason = self._ended or "the desktop session ended"
        for ticket in self.tickets():
            ticket.resolve(Reply(reason, {"status": "ended"}, error=True))
        while True:
            try:
                job = self._inbox.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.ticket.resolve(Reply(reason, {"status": "ended"}, error=True))


class Desktops:
    """Every desktop this server opened, so that exiting removes them all."""

    def __init__(self) -> None:
        self._open: set[DesktopSession] = set()
        self._lock = threading.Lock()

    def add(self, desktop: DesktopSession) -> None:
        with self._lock:
            self._open.add(desktop)

    def discard(self, desktop: DesktopSession) -> None:
        with self._lock:
            self._open.discard(desktop)

    def close_all(self) -> None:
        with self._lock:
            left = list(self._open)
            self._open.clear()
        for desktop in left:
            desktop.close()
