"""One desktop per MCP session: the agent loop in a worker thread, fed by tool calls.

The MCP client is the planner.  :class:`~agent.mcp.planner.QueuePlanner`
implements the planner seam by taking :class:`~agent.mcp.requests.ToolRequest`
objects from a queue; the ordinary :class:`~agent.loop.AgentLoop` runs them through the
whole step pipeline, so validation, policy, audit, approvals (deskhand's own
broker on the audit database, never the client) and settling are exactly
those of ``deskhand run``.  Each call gets a ticket the server
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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from agent.approvals import BrokerApprover, TerminalPrompt
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.mcp.observed_log import ApprovalAsked, ObservedLog
from agent.mcp.planner import ENDED, Job, QueuePlanner, Ticket
from agent.mcp.requests import Reply, ToolRequest
from agent.mcp.run import RunParts, ScreenOnlyPerception
from agent.mcp.screen import ScreenSpace
from sandbox.base import Sandbox, Viewer

log = logging.getLogger("deskhand.mcp")

# How long closing a session waits for its worker to remove the sandbox.
CLOSE_TIMEOUT_S = 60.0


class SessionEnded(RuntimeError):
    """The session's desktop is gone (closed, failed, or out of budget); the message says why."""



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
        self._inbox.put(ENDED)
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
            elements=parts.elements,
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
