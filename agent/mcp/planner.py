"""The planner an MCP client is: tool calls from a queue, one action per turn.

:class:`QueuePlanner` implements the planner seam.  Each :class:`Job` is a
tool call's :class:`~agent.mcp.requests.ToolRequest` and its :class:`Ticket`;
the planner proposes the request's steps to the loop, hands it what happened
to each, and puts the request's reply on the ticket when it is finished.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from agent.mcp.observed_log import ApprovalAsked, ObservedLog
from agent.mcp.requests import Reply, Settled, ToolRequest
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from sandbox.base import Frame

log = logging.getLogger("deskhand.mcp")


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



# Put on the queue when the MCP session ends.
ENDED = None


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
            if self._job is ENDED:
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
