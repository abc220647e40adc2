"""The step pipeline: observe, plan, validate, decide, record intent, approve,
execute, settle, record result.

:class:`AgentLoop` owns no clients: the sandbox, planner, policy, audit log,
approver and reporter are all injected, so the same loop runs against the
fake sandbox in milliseconds and against Xvfb or Docker for real.

Signals are values, not exceptions: a denied or invalid action becomes an
:class:`~agent.planners.base.ActionOutcome` that goes back to the planner.
Exceptions are for crashes (the sandbox died, the database is gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from agent.approvals import ApprovalRequest, Approver, frames_match_near
from agent.planners.base import ActionOutcome, Observation, Planner, ProposedAction, Turn
from agent.planners.errors import PlannerError
from audit.records import Outcome, ResultStatus, SessionInfo, Usage
from policies.decision import Decision, PolicyContext, Triage
from sandbox.actions import (
    OBSERVING_TYPES,
    Action,
    ActionError,
    TypeText,
    validate_for_screen,
)
from sandbox.base import ExecResult, Frame, Sandbox
from sandbox.errors import ExecutorError, SandboxError


class PolicyEngine(Protocol):
    name: str
    sha256: str

    def decide(self, action: Action, context: PolicyContext) -> Decision: ...

    def rate_wait_s(self, context: PolicyContext) -> float: ...


class AuditRecorder(Protocol):
    """The part of the audit log the loop writes to."""

    def start_session(self, info: SessionInfo) -> str: ...

    def put_frame(self, frame: Frame) -> str: ...

    def record_intent(self, session_id: str, *, index: int, action: Action | None,
                      proposed_raw: object, validation_error: str | None,
                      decision: Decision | None, frame_before_sha256: str | None,
                      secret: bool) -> int: ...

    def record_result(self, step_id: int, *, status: ResultStatus,
                      output: dict[str, Any], error: str | None,
                      frame_after_sha256: str | None, timings_ms: dict[str, float],
                      usage: Usage | None = None) -> None: ...

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...

    def end_session(self, session_id: str, *, outcome: Outcome, reason: str) -> None: ...


class Perceiver(Protocol):
    """Optional perception: triage of the task and injection risk of a frame."""

    def triage(self, task: str) -> Triage | None: ...

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]: ...


@runtime_checkable
class Prefetching(Protocol):
    """A perceiver that can start reading a frame before the loop asks about it."""

    def prefetch(self, frame: Frame, task: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StepReport:
    """One finished step, for whoever shows progress."""

    index: int
    description: str
    effect: str
    status: str
    rule_ids: tuple[str, ...]
    reason: str
    elapsed_ms: float
    settle_ms: float | None = None
    approver: str | None = None


@dataclass(slots=True)
class RunSummary:
    session_id: str
    outcome: Outcome
    reason: str
    steps: int = 0
    executed: int = 0
    denied: int = 0
    invalid: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "done"


class Reporter(Protocol):
    def on_step(self, report: StepReport) -> None: ...

    def on_turn(self, turn: Turn) -> None: ...

    def on_frame(self, frame: Frame) -> None: ...


class SilentReporter:
    def on_step(self, report: StepReport) -> None:
        pass

    def on_turn(self, turn: Turn) -> None:
        pass

    def on_frame(self, frame: Frame) -> None:
        pass


@dataclass(frozen=True, slots=True)
class LoopConfig:
    max_turns: int = 200
    approval_timeout_s: float = 120.0
    action_deadline_s: float = 30.0
    max_cost_usd: float | None = None
    reask_limit: int = 2
    idle_turn_limit: int = 3
    settle_profile: str | None = None  # the sandbox's own default when None


@dataclass(slots=True)
class _RunState:
    session_id: str
    task: str
    frame: Frame
    started: float
    summary: RunSummary
    context: PolicyContext
    idle_turns: int = 0
    assessed_frame: str = ""


class AgentLoop:
    """Runs one task to completion through the step pipeline."""

    def __init__(self, *, sandbox: Sandbox, planner: Planner, policy: PolicyEngine,
                 audit: AuditRecorder, approver: Approver, reporter: Reporter | None = None,
                 config: LoopConfig | None = None, perceiver: Perceiver | None = None,
                 session_extra: dict[str, Any] | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.sandbox = sandbox
        self.planner = planner
        self.policy = policy
        self.audit = audit
        self.approver = approver
        self.reporter = reporter or SilentReporter()
        self.config = config or LoopConfig()
        self.perceiver = perceiver
        self.session_extra = session_extra or {}
        self.should_stop = should_stop
        self._clock = clock
        self._sleep = sleep

    # -- the run -------------------------------------------------------------

    def run(self, task: str) -> RunSummary:
        """Run ``task`` until the planner finishes, a budget ends it, or it is interrupted."""
        state = self._open_session(task)
        try:
            outcome, reason = self._drive(state)
        except KeyboardInterrupt:
            outcome, reason = "interrupted", "interrupted by the user (Ctrl-C)"
        except SandboxError as exc:
            outcome, reason = "error", f"sandbox failed: {exc}"
        except PlannerError as exc:
            outcome, reason = "error", f"planner failed: {exc}"
        self._close_session(state, outcome, reason)
        return state.summary

    def _open_session(self, task: str) -> _RunState:
        triage = self.perceiver.triage(task) if self.perceiver else None
        size = self.sandbox.size
        info = SessionInfo(
            task=task, planner=self.planner.name, model=self.planner.model,
            policy_name=self.policy.name, policy_sha256=self.policy.sha256,
            sandbox_kind=self.sandbox.kind, sandbox_image=str(self.session_extra.get("image", "")),
            screen_width=size.width, screen_height=size.height,
            network=bool(self.session_extra.get("network", False)),
            triage=_triage_dict(triage), extra=self.session_extra,
        )
        session_id = self.audit.start_session(info)
        frame = self.sandbox.screenshot()
        self._prefetch(frame, task)
        self.audit.put_frame(frame)
        self.reporter.on_frame(frame)
        context = PolicyContext(screen_width=size.width, screen_height=size.height,
                                window_title=frame.window_title, triage=triage)
        summary = RunSummary(session_id=session_id, outcome="error", reason="")
        return _RunState(session_id, task, frame, self._clock(), summary, context)

    def _close_session(self, state: _RunState, outcome: Outcome, reason: str) -> None:
        state.summary.outcome = outcome
        state.summary.reason = reason
        state.summary.duration_s = self._clock() - state.started
        self.audit.end_session(state.session_id, outcome=outcome, reason=reason)

    def _drive(self, state: _RunState) -> tuple[Outcome, str]:
        outcomes: list[ActionOutcome] = []
        for turn_index in range(self.config.max_turns):
            if self.should_stop():
                return "interrupted", "stopped by the user"
            turn = self._plan(state, outcomes)
            if turn.finished is not None:
                return _finish(turn)
            if self._over_budget(state):
                return "budget", f"cost ${state.summary.cost_usd:.4f} exceeds the session budget"
            if self._idle(state, turn):
                return "failed", "the planner proposed no action for too many turns"
            outcomes = self._run_turn(state, turn)
            if turn_index + 1 == self.config.max_turns:
                break
        return "failed", f"stopped after {self.config.max_turns} turns without finishing"

    def _run_turn(self, state: _RunState, turn: Turn) -> list[ActionOutcome]:
        """Run a turn's actions in order, stopping at the first that did not run.

        Later actions of the turn were planned assuming the earlier ones
        worked; the planner is told they were not run.
        """
        outcomes: list[ActionOutcome] = []
        for index, proposed in enumerate(turn.actions):
            if self.should_stop():
                break
            outcome = self._run_step(state, proposed, turn.usage if index == 0 else None)
            outcomes.append(outcome)
            if outcome.status != "done":
                break
        return outcomes

    def _plan(self, state: _RunState, outcomes: list[ActionOutcome]) -> Turn:
        observation = Observation(frame=state.frame, task=state.task,
                                  step_index=state.summary.steps)
        turn = self.planner.next_turn(observation, outcomes)
        state.summary.cost_usd += turn.usage.cost_usd
        self.reporter.on_turn(turn)
        if turn.message or turn.usage != Usage():
            self.audit.record_event(state.session_id, "planner_turn", {
                "message": turn.message, "finished": turn.finished,
                "actions": len(turn.actions), "usage": _usage_dict(turn.usage),
            })
        return turn

    def _over_budget(self, state: _RunState) -> bool:
        limit = self.config.max_cost_usd
        return limit is not None and state.summary.cost_usd > limit

    def _idle(self, state: _RunState, turn: Turn) -> bool:
        state.idle_turns = 0 if turn.actions else state.idle_turns + 1
        return state.idle_turns >= self.config.idle_turn_limit

    # -- one step ------------------------------------------------------------

    def _run_step(self, state: _RunState, proposed: ProposedAction,
                  usage: Usage | None) -> ActionOutcome:
        """One proposed action through the pipeline; ``usage`` is the turn's, on its first step."""
        started = self._clock()
        index = state.summary.steps
        state.summary.steps += 1
        timings: dict[str, float] = {}
        action, problem = self._validate(proposed)
        timings["validate_ms"] = self._ms_since(started)
        if action is None:
            return self._reject_invalid(state, proposed, problem, index, started)
        decision = self._decide(state, action, proposed)
        timings["decide_ms"] = self._ms_since(started) - timings["validate_ms"]
        step_id = self._record_intent(state, index, action, proposed, decision)
        if decision.effect == "deny":
            return self._finish_denied(state, index, action, decision, step_id, started,
                                       approver=None, call_id=proposed.call_id)
        approver = None
        if decision.effect == "ask":
            approved, approver = self._approve(state, action, decision, step_id)
            if not approved:
                return self._finish_denied(state, index, action, decision, step_id, started,
                                           approver=approver, call_id=proposed.call_id)
        outcome = self._execute(state, index, action, decision, step_id, started, timings,
                                approver, usage)
        return replace(outcome, call_id=proposed.call_id)

    def _validate(self, proposed: ProposedAction) -> tuple[Action | None, str]:
        if proposed.action is None:
            return None, proposed.error or "the planner proposed no valid action"
        size = self.sandbox.size
        try:
            validate_for_screen(proposed.action, size.width, size.height)
        except ActionError as exc:
            return None, str(exc)
        return proposed.action, ""

    def _decide(self, state: _RunState, action: Action, proposed: ProposedAction) -> Decision:
        context = state.context
        context.step_index = state.summary.steps - 1
        context.elapsed_s = self._clock() - state.started
        context.window_title = state.frame.window_title
        context.cursor = state.frame.cursor
        context.now = self._clock()
        self._throttle(state)
        if action.type not in OBSERVING_TYPES:
            self._assess_injection(state)
        decision = self.policy.decide(action, context)
        if proposed.force_ask and decision.effect == "allow":
            decision = Decision(effect="ask", rule_ids=(*decision.rule_ids, "planner.force_ask"),
                                reason=proposed.force_ask, policy_sha256=decision.policy_sha256,
                                secret=decision.secret)
        return decision

    def _throttle(self, state: _RunState) -> None:
        """Wait for the rate budget to allow the next action, unless the wait passes its cap
        (then the policy denies the action)."""
        wait = self.policy.rate_wait_s(state.context)
        if wait <= 0:
            return
        self.audit.record_event(state.session_id, "rate_limit_wait",
                                {"step_index": state.context.step_index,
                                 "wait_s": round(wait, 3)})
        until = self._clock() + wait
        while not self.should_stop() and (left := until - self._clock()) > 0:
            self._sleep(min(left, 0.25))
        state.context.now = self._clock()

    def _record_intent(self, state: _RunState, index: int, action: Action,
                       proposed: ProposedAction, decision: Decision) -> int:
        return self.audit.record_intent(
            state.session_id, index=index, action=action,
            proposed_raw=proposed.raw, validation_error=None, decision=decision,
            frame_before_sha256=state.frame.sha256, secret=decision.secret,
        )

    def _reject_invalid(self, state: _RunState, proposed: ProposedAction, problem: str,
                        index: int, started: float) -> ActionOutcome:
        action = proposed.action
        self.audit.record_intent(
            state.session_id, index=index,
            action=action,
            proposed_raw=proposed.raw, validation_error=problem, decision=None,
            frame_before_sha256=state.frame.sha256, secret=False,
        )
        state.summary.invalid += 1
        self._report(index, action.describe() if action else "invalid action", "invalid",
                     "invalid", (), problem, started)
        return ActionOutcome(action=action, status="invalid", message=problem,
                             call_id=proposed.call_id)

    def _finish_denied(self, state: _RunState, index: int, action: Action, decision: Decision,
                       step_id: int, started: float, *, approver: str | None,
                       call_id: str | None) -> ActionOutcome:
        if approver is not None or decision.effect == "ask":
            self.audit.record_result(step_id, status="denied", output={},
                                     error=f"not approved ({approver or 'no answer'})",
                                     frame_after_sha256=None, timings_ms={})
        state.summary.denied += 1
        self._report(index, _describe(action, decision), decision.effect, "denied",
                     decision.rule_ids, decision.reason, started, approver=approver)
        why = decision.reason if decision.effect == "deny" else "a human did not approve it"
        return ActionOutcome(action=action, status="denied",
                             message=f"denied by policy: {why}", call_id=call_id)

    # -- approval ------------------------------------------------------------

    def _approve(self, state: _RunState, action: Action, decision: Decision,
                 step_id: int) -> tuple[bool, str]:
        shown = state.frame
        for _attempt in range(self.config.reask_limit + 1):
            request = ApprovalRequest(session_id=state.session_id, step_id=step_id,
                                      action=action, decision=decision, frame=shown,
                                      timeout_s=self.config.approval_timeout_s)
            answer = self.approver.request(request)
            if answer is None or not answer.approved:
                return False, answer.approver if answer else "nobody (no answer in time)"
            if answer.scope == "session":
                self._grant_for_session(state, decision, answer.approver)
            current = self.sandbox.screenshot()
            if frames_match_near(shown, current, action):
                return True, answer.approver
            self.audit.record_event(state.session_id, "approval_stale", {
                "step_id": step_id, "shown": shown.sha256, "now": current.sha256,
            })
            shown = state.frame = current
        return False, "stale"

    def _grant_for_session(self, state: _RunState, decision: Decision, approver: str) -> None:
        asked = [r for r in decision.rule_ids if not r.startswith("planner.")]
        state.context.session_grants.update(asked)
        self.audit.record_event(state.session_id, "session_grant",
                                {"rule_ids": asked, "approver": approver})

    # -- execution -----------------------------------------------------------

    def _execute(self, state: _RunState, index: int, action: Action, decision: Decision,
                 step_id: int, started: float, timings: dict[str, float],
                 approver: str | None, usage: Usage | None) -> ActionOutcome:
        before_exec = self._clock()
        try:
            result = self.sandbox.execute(action, deadline_s=self.config.action_deadline_s,
                                          settle_profile=self.config.settle_profile)
        except ExecutorError as exc:
            return self._record_failure(state, index, action, decision, step_id, started, exc)
        timings["execute_ms"] = (self._clock() - before_exec) * 1000
        timings["settle_ms"] = result.settle.settle_ms
        self._observe(state, action, result)
        frame_sha = self.audit.put_frame(result.frame)
        timings["total_ms"] = self._ms_since(started)
        self.audit.record_result(step_id, status="done", output=_with_settle(result),
                                 error=None, frame_after_sha256=frame_sha, timings_ms=timings,
                                 usage=usage)
        state.summary.executed += 1
        self._report(index, _describe(action, decision), decision.effect, "done",
                     decision.rule_ids, decision.reason, started,
                     settle_ms=result.settle.settle_ms, approver=approver)
        return ActionOutcome(action=action, status="done", output=result.output,
                             frame=result.frame)

    def _observe(self, state: _RunState, action: Action, result: ExecResult) -> None:
        context = state.context
        context.recent_action_times.append(self._clock())
        del context.recent_action_times[:-120]
        if isinstance(action, TypeText):
            context.typed_chars += len(action.text)
        if action.type != "zoom":
            state.frame = result.frame
            self._prefetch(result.frame, state.task)
            self.reporter.on_frame(result.frame)

    def _prefetch(self, frame: Frame, task: str) -> None:
        """Let perception read ``frame`` while the planner plans (see agent/perception/
        background.py); the verdict is then ready when the next action is decided."""
        if isinstance(self.perceiver, Prefetching):
            self.perceiver.prefetch(frame, task)

    def _assess_injection(self, state: _RunState) -> None:
        """Read the current frame for instructions aimed at the agent, once per frame."""
        if self.perceiver is None or state.assessed_frame == state.frame.sha256:
            return
        risk, reason = self.perceiver.injection_risk(state.frame, state.task)
        state.context.injection_risk, state.context.injection_reason = risk, reason
        state.assessed_frame = state.frame.sha256
        if risk > 0:
            self.audit.record_event(state.session_id, "injection_assessed", {
                "frame": state.frame.sha256, "risk": risk, "reason": reason})

    def _record_failure(self, state: _RunState, index: int, action: Action,
                        decision: Decision, step_id: int, started: float,
                        exc: ExecutorError) -> ActionOutcome:
        self.audit.record_result(step_id, status="error", output={}, error=str(exc),
                                 frame_after_sha256=None, timings_ms={})
        state.summary.errors += 1
        self._report(index, _describe(action, decision), decision.effect, "error",
                     decision.rule_ids, str(exc), started)
        return ActionOutcome(action=action, status="error", message=str(exc))

    # -- helpers -------------------------------------------------------------

    def _ms_since(self, started: float) -> float:
        return (self._clock() - started) * 1000

    def _report(self, index: int, description: str, effect: str, status: str,
                rule_ids: tuple[str, ...], reason: str, started: float, *,
                settle_ms: float | None = None, approver: str | None = None) -> None:
        self.reporter.on_step(StepReport(
            index=index, description=description, effect=effect, status=status,
            rule_ids=rule_ids, reason=reason, elapsed_ms=self._ms_since(started),
            settle_ms=settle_ms, approver=approver,
        ))


def _finish(turn: Turn) -> tuple[Outcome, str]:
    if turn.finished == "done":
        return "done", turn.message or "the planner reported the task done"
    return "failed", turn.message or "the planner gave up"


def _describe(action: Action, decision: Decision) -> str:
    """Describe an action, masking typed text that the policy marked secret."""
    if decision.secret and isinstance(action, TypeText):
        return f"type •••• ({len(action.text)} chars, secret)"
    return action.describe()


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens, "cost_usd": usage.cost_usd}


def _triage_dict(triage: Triage | None) -> dict[str, Any] | None:
    if triage is None:
        return None
    return {"category": triage.category, "risk": triage.risk, "confidence": triage.confidence}


def _with_settle(result: ExecResult) -> dict[str, Any]:
    """The output the audit log keeps: the action's own, plus how the screen was awaited."""
    settle = result.settle
    if not settle.profile:
        return result.output
    return {**result.output, "settle": {"profile": settle.profile, "waited_ms": settle.settle_ms,
                                        "changed": settle.changed, "stable": settle.stable,
                                        "reaction_ms": settle.reaction_ms}}
