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

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from agent.approvals import ApprovalRequest, Approver, frames_match_near
from agent.frame_guard import FrameGuard, GuardedFrame
from agent.interrupts import interrupted_reason
from agent.perception.targets import outside, pressed_at
from agent.planners.base import ActionOutcome, Observation, Planner, ProposedAction, Turn
from agent.planners.errors import PlannerError
from agent.shell_gate import ShellGate
from audit.errors import AuditStateError
from audit.records import Outcome, ResultStatus, SessionInfo, Usage
from policies.command_line import LineTracker, is_paste, paste_selection
from policies.decision import Decision, PolicyContext, TargetElement, Triage, TypedFromScreen
from sandbox.actions import (
    OBSERVING_TYPES,
    Action,
    ActionError,
    TypeText,
    validate_for_screen,
)
from sandbox.base import ExecResult, Frame, Sandbox, open_gate
from sandbox.errors import ExecutorError, SandboxError

if TYPE_CHECKING:
    from agent.perception.elements import Element


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
                      secret: bool, target_element: TargetElement | None = None) -> int: ...

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

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        """Where on this or a recent screen the typed ``text`` was shown, when the task
        did not ask for it and it is a command, URL, address, amount or credential."""
        ...


class ElementFinder(Protocol):
    """The run's elements per frame (agent/perception/targets.py), each answer bounded in
    time: the element under a point, and what a planner may be told is on screen."""

    def target_at(self, frame: Frame, x: int, y: int) -> TargetElement | None: ...

    def listed(self, frame: Frame) -> Sequence[Element]: ...


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
    # For an ``error`` outcome: which part failed, "sandbox" or "planner".
    failed_part: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "done"

    @property
    def clean(self) -> bool:
        """Done, with no step invalid or denied on the way."""
        return self.ok and self.invalid == 0 and self.denied == 0


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


# Called right before a step executes (session id, step index, decision, whether a
# human approved it, context); returns a notice for the planner ("" for none).
BeforeExecute = Callable[[str, int, Decision, bool, PolicyContext], str]


@dataclass(frozen=True, slots=True)
class LoopConfig:
    max_turns: int = 200
    approval_timeout_s: float = 120.0
    action_deadline_s: float = 30.0
    max_cost_usd: float | None = None
    reask_limit: int = 2
    idle_turn_limit: int = 3
    settle_profile: str | None = None  # the sandbox's own default when None
    list_elements: bool = False  # give the planner the screen's elements (--elements)


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
    awaiting_approval: bool = False
    lines: LineTracker = field(default_factory=LineTracker)  # each window's shell input line
    gate: ShellGate | None = None  # the second gate: commands the desktop's shells run
    withheld: str = ""  # why the current frame must not go to a model ("" when it may)
    redacted: tuple[tuple[int, int, int, int], ...] = ()  # the current frame's blacked-out boxes


class AgentLoop:
    """Runs one task to completion through the step pipeline."""

    def __init__(self, *, sandbox: Sandbox, planner: Planner, policy: PolicyEngine,
                 audit: AuditRecorder, approver: Approver, reporter: Reporter | None = None,
                 config: LoopConfig | None = None, perceiver: Perceiver | None = None,
                 session_extra: dict[str, Any] | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 stop_reason: Callable[[], str] = lambda: "stopped by the user",
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 on_session: Callable[[str], None] = lambda _session_id: None,
                 frame_guard: FrameGuard | None = None,
                 before_execute: BeforeExecute | None = None,
                 elements: ElementFinder | None = None) -> None:
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
        self.stop_reason = stop_reason
        self._clock = clock
        self.on_session = on_session  # told the session id once it is recorded (egress)
        self._sleep = sleep
        self.frame_guard = frame_guard
        # Checkpoints and undo requests (agent/undo.py), right before a step runs.
        self.before_execute = before_execute
        self.elements = elements  # the element under a click; the planner's element list

    # -- the run -------------------------------------------------------------

    def run(self, task: str) -> RunSummary:
        """Run ``task`` until the planner finishes, a budget ends it, or it is interrupted."""
        state = self._open_session(task)
        try:
            outcome, reason = self._drive(state)
        except (KeyboardInterrupt, SandboxError, PlannerError) as exc:
            outcome, reason, state.summary.failed_part = _ending(exc)
        self._close_session(state, outcome, reason)
        return state.summary

    def _open_session(self, task: str) -> _RunState:
        """Record the session and take the first look; a stop or a sandbox failure on the
        way ends the recorded session (then raises) instead of leaving it open."""
        triage = self.perceiver.triage(task) if self.perceiver else None
        session_id = self._start_session(task, triage)
        try:
            return self._first_look(session_id, task, triage)
        except (KeyboardInterrupt, SandboxError) as exc:
            outcome, reason, _part = _ending(exc)
            self.audit.end_session(session_id, outcome=outcome, reason=reason)
            raise

    def _start_session(self, task: str, triage: Triage | None) -> str:
        size = self.sandbox.size
        info = SessionInfo(
            task=task, planner=self.planner.name, model=self.planner.model,
            policy_name=self.policy.name, policy_sha256=self.policy.sha256,
            sandbox_kind=self.sandbox.kind, sandbox_image=str(self.session_extra.get("image", "")),
            screen_width=size.width, screen_height=size.height,
            network=bool(self.session_extra.get("network", False)),
            triage=_triage_dict(triage), extra=self.session_extra,
        )
        return self.audit.start_session(info)

    def _first_look(self, session_id: str, task: str, triage: Triage | None) -> _RunState:
        self.on_session(session_id)
        size = self.sandbox.size
        guarded = self._guard(session_id, self.sandbox.screenshot())
        frame = guarded.frame
        self._prefetch(frame, task)
        self.audit.put_frame(frame)
        self.reporter.on_frame(frame)
        context = PolicyContext(screen_width=size.width, screen_height=size.height,
                                window_title=frame.window_title, triage=triage)
        summary = RunSummary(session_id=session_id, outcome="error", reason="")
        state = _RunState(session_id, task, frame, self._clock(), summary, context,
                          withheld=guarded.withheld, redacted=guarded.boxes)
        state.gate = ShellGate(self.policy, context)
        self.sandbox.serve_shell_gate(state.gate.judge)
        return state

    def _close_session(self, state: _RunState, outcome: Outcome, reason: str) -> None:
        self.sandbox.serve_shell_gate(open_gate)
        self._record_gate_verdicts(state)
        state.summary.outcome = outcome
        state.summary.reason = reason
        state.summary.duration_s = self._clock() - state.started
        self.audit.end_session(state.session_id, outcome=outcome, reason=reason)

    def _drive(self, state: _RunState) -> tuple[Outcome, str]:
        outcomes: list[ActionOutcome] = []
        for turn_index in range(self.config.max_turns):
            if self.should_stop():
                return "interrupted", self.stop_reason()
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
                                  step_index=state.summary.steps, withheld=state.withheld,
                                  elements=self._listed_elements(state))
        turn = self.planner.next_turn(observation, outcomes)
        state.summary.cost_usd += turn.usage.cost_usd
        self.reporter.on_turn(turn)
        if turn.message or turn.usage != Usage():
            self.audit.record_event(state.session_id, "planner_turn", {
                "message": turn.message, "finished": turn.finished,
                "actions": len(turn.actions), "usage": _usage_dict(turn.usage),
            })
        return turn

    def _listed_elements(self, state: _RunState) -> tuple[Element, ...]:
        """The screen's elements for the planner (``--elements``), none of them over a
        redacted region; none at all when the frame is withheld."""
        if self.elements is None or not self.config.list_elements or state.withheld:
            return ()
        return tuple(outside(self.elements.listed(state.frame), state.redacted))

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
        step = _Step(index=state.summary.steps, proposed=proposed, started=self._clock(),
                     usage=usage)
        state.summary.steps += 1
        problem = self._validate(step)
        step.lap("validate_ms", self._clock())
        if step.action is None:
            return self._reject_invalid(state, step, problem)
        step.decision = self._decide(state, step.action, proposed)
        step.lap("decide_ms", self._clock())
        step.step_id = self._record_intent(state, step)
        if step.decision.effect == "deny":
            return self._close_step(state, step, "denied")
        with self._closed_on_stop(state, step.step_id):
            if step.decision.effect == "ask" and not self._approve(state, step):
                return self._close_step(state, step, "denied")
            return self._execute(state, step)

    @contextlib.contextmanager
    def _closed_on_stop(self, state: _RunState, step_id: int) -> Iterator[None]:
        """Close the step in flight when a stop arrives, so that none stays pending:
        denied when it waited for an approval, interrupted otherwise.

        The stop may land just after the step's result was committed; then
        there is nothing left to close.
        """
        try:
            yield
        except KeyboardInterrupt as exc:
            status: ResultStatus = "denied" if state.awaiting_approval else "interrupted"
            why = interrupted_reason(exc)
            with contextlib.suppress(AuditStateError):
                self.audit.record_result(
                    step_id, status=status, output={}, frame_after_sha256=None, timings_ms={},
                    error=f"not approved ({why})" if status == "denied" else why)
            raise

    def _validate(self, step: _Step) -> str:
        """Set ``step.action`` when the proposal is a valid action for this screen; else why not."""
        action = step.proposed.action
        if action is None:
            return step.proposed.error or "the planner proposed no valid action"
        size = self.sandbox.size
        try:
            validate_for_screen(action, size.width, size.height)
        except ActionError as exc:
            return str(exc)
        step.action = action
        return ""

    def _policy_context(self, state: _RunState) -> PolicyContext:
        """What the policy may look at for this step, built once, from the run's state."""
        context = state.context
        context.step_index = state.summary.steps - 1
        context.elapsed_s = self._clock() - state.started
        context.window_title = state.frame.window_title
        context.cursor = state.frame.cursor
        context.now = self._clock()
        return context

    def _decide(self, state: _RunState, action: Action, proposed: ProposedAction) -> Decision:
        context = self._policy_context(state)
        self._throttle(state)
        if action.type not in OBSERVING_TYPES:
            self._assess_injection(state)
        self._rebuild_line(state, action)
        self._record_gate_verdicts(state)
        context.target_element = target_element(proposed.raw) or self._element_under(state,
                                                                                      action)
        context.typed_from_screen = (
            self.perceiver.typed_from_screen(action.text, state.frame, state.task)
            if self.perceiver is not None and isinstance(action, TypeText) else None)
        decision = _naming_the_line(self.policy.decide(action, context), action,
                                    context.submitted_line)
        if context.pasted_text is not None:
            self._record_paste(state, action, context.pasted_text, decision)
        if proposed.force_ask and decision.effect == "allow":
            decision = Decision(effect="ask", rule_ids=(*decision.rule_ids, "planner.force_ask"),
                                reason=proposed.force_ask, policy_sha256=decision.policy_sha256,
                                secret=decision.secret)
        return decision

    def _element_under(self, state: _RunState, action: Action) -> TargetElement | None:
        """The element a click (or a mouse button's release) lands on, as the run's element
        source sees the frame the planner chose it on; waited for a bounded time."""
        point = pressed_at(action, state.frame.cursor)
        if self.elements is None or point is None:
            return None
        return self.elements.target_at(state.frame, *point)

    def _rebuild_line(self, state: _RunState, action: Action) -> None:
        """Tell the policy the line this action submits to the window's shell, if any."""
        pasted = self._read_paste(action) if is_paste(action) else None
        view = state.lines.propose(state.frame.window_title, action, pasted)
        context = state.context
        context.submitted_line = view.submitted_line
        context.line_unknown = view.unknown if view.submitted else ()
        context.pasted_text = pasted

    def _read_paste(self, action: Action) -> str | None:
        try:
            return self.sandbox.read_selection(paste_selection(action))
        except ExecutorError:
            return None  # an unread paste is unknown, which the policy judges as such

    def _record_gate_verdicts(self, state: _RunState) -> None:
        """Record what the second gate let run or refused since the last look."""
        for verdict in state.gate.take_verdicts() if state.gate is not None else []:
            self.audit.record_event(state.session_id, "shell_gate", verdict.as_event())

    def _record_paste(self, state: _RunState, action: Action, text: str,
                      decision: Decision) -> None:
        self.audit.record_event(state.session_id, "paste_read", {
            "selection": paste_selection(action), "chars": len(text),
            "text": "••••" if decision.secret else text})

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

    def _record_intent(self, state: _RunState, step: _Step) -> int:
        return self.audit.record_intent(
            state.session_id, index=step.index, action=step.action,
            proposed_raw=step.proposed.raw, validation_error=None, decision=step.decision,
            frame_before_sha256=state.frame.sha256, secret=step.secret,
            target_element=state.context.target_element,
        )

    def _reject_invalid(self, state: _RunState, step: _Step, problem: str) -> ActionOutcome:
        self.audit.record_intent(
            state.session_id, index=step.index, action=step.proposed.action,
            proposed_raw=step.proposed.raw, validation_error=problem, decision=None,
            frame_before_sha256=state.frame.sha256, secret=False,
        )
        return self._close_step(state, step, "invalid", message=problem)

    def _close_step(self, state: _RunState, step: _Step, status: StepStatus, *,
                    message: str = "", result: ExecResult | None = None) -> ActionOutcome:
        """The one place a step ends: its result recorded, counted and reported."""
        if status == "done" and result is not None:
            self._record_done(state, step, result)
        elif status == "error":
            self._record_closed(step, "error", message)
        elif status == "denied" and step.asked:
            self._record_closed(step, "denied", f"not approved ({step.approver or 'no answer'})")
        _count(state.summary, status)
        self._report(step, status, message)
        return ActionOutcome(action=step.action or step.proposed.action, status=status,
                             message=self._outcome_message(step, status, message),
                             output=result.output if result else {},
                             frame=result.frame if result and not state.withheld else None,
                             call_id=step.proposed.call_id)

    def _record_done(self, state: _RunState, step: _Step, result: ExecResult) -> None:
        frame_sha = self.audit.put_frame(result.frame)
        step.timings["total_ms"] = (self._clock() - step.started) * 1000
        _, _, step_id = step.recorded()
        self.audit.record_result(step_id, status="done", output=_with_settle(result),
                                 error=None, frame_after_sha256=frame_sha,
                                 timings_ms=step.timings, usage=step.usage)

    def _record_closed(self, step: _Step, status: ResultStatus, error: str) -> None:
        _, _, step_id = step.recorded()
        self.audit.record_result(step_id, status=status, output={}, error=error,
                                 frame_after_sha256=None, timings_ms={})

    @staticmethod
    def _outcome_message(step: _Step, status: StepStatus, message: str) -> str:
        if status != "denied":
            return message
        decision = step.decision
        why = decision.reason if decision and decision.effect == "deny" \
            else "a human did not approve it"
        return f"denied by policy: {why}"

    # -- approval ------------------------------------------------------------

    def _approve(self, state: _RunState, step: _Step) -> bool:
        state.awaiting_approval = True  # stays set if a stop unwinds through here
        approved = self._ask_until_fresh(state, step)
        state.awaiting_approval = False
        return approved

    def _ask_until_fresh(self, state: _RunState, step: _Step) -> bool:
        """Ask; when the screen near the target changed before it ran, ask again."""
        action, decision, step_id = step.recorded()
        step.asked = True
        shown = state.frame
        for _attempt in range(self.config.reask_limit + 1):
            request = ApprovalRequest(session_id=state.session_id, step_id=step_id,
                                      action=action, decision=decision, frame=shown,
                                      timeout_s=self.config.approval_timeout_s,
                                      target=state.context.target_element)
            answer = self.approver.request(request)
            if answer is None or not answer.approved:
                step.approver = answer.approver if answer else "nobody (no answer in time)"
                return False
            step.approver = answer.approver
            if answer.scope == "session":
                self._grant_for_session(state, decision, answer.approver)
            guarded = self._guard(state.session_id, self.sandbox.screenshot())
            current = guarded.frame
            if frames_match_near(shown, current, action):
                return True
            self.audit.record_event(state.session_id, "approval_stale", {
                "step_id": step_id, "shown": shown.sha256, "now": current.sha256,
            })
            shown = state.frame = current
            state.withheld, state.redacted = guarded.withheld, guarded.boxes
        step.approver = "stale"
        return False

    def _grant_for_session(self, state: _RunState, decision: Decision, approver: str) -> None:
        asked = [r for r in decision.rule_ids if not r.startswith("planner.")]
        state.context.session_grants.update(asked)
        self.audit.record_event(state.session_id, "session_grant",
                                {"rule_ids": asked, "approver": approver})

    # -- execution -----------------------------------------------------------

    def _execute(self, state: _RunState, step: _Step) -> ActionOutcome:
        action, decision, _ = step.recorded()
        if self.frame_guard is not None and step.secret and isinstance(action, TypeText):
            self.frame_guard.remember_secret(action.text)
        notice = "" if self.before_execute is None else self.before_execute(
            state.session_id, step.index, decision, step.asked, state.context)
        before_exec = self._clock()
        if state.gate is not None:
            state.gate.let_through(state.context.submitted_line)
        try:
            result = self.sandbox.execute(action, deadline_s=self.config.action_deadline_s,
                                          settle_profile=self.config.settle_profile)
        except ExecutorError as exc:
            return self._close_step(state, step, "error", message=str(exc))
        result = self._guard_result(state, step, result)
        step.timings["execute_ms"] = (self._clock() - before_exec) * 1000
        step.timings["settle_ms"] = result.settle.settle_ms
        step.settle_ms = result.settle.settle_ms
        self._observe(state, action, result)
        return self._close_step(state, step, "done", result=result, message=notice)

    def _guard(self, session_id: str, frame: Frame, *, typed_secret: bool = False,
               step: _Step | None = None) -> GuardedFrame:
        """The frame with its secrets redacted (the frame itself without a guard)."""
        if self.frame_guard is None:
            return GuardedFrame(frame)
        guarded = self.frame_guard.guard(frame, typed_secret=typed_secret)
        if step is not None:
            step.timings["redact_ms"] = guarded.redact_ms
        if guarded.boxes or guarded.withheld:
            self.audit.record_event(session_id, "frame_redacted", {
                "frame": guarded.frame.sha256, "regions": len(guarded.boxes),
                "boxes": [list(box) for box in guarded.boxes], "withheld": guarded.withheld,
                "step_index": step.index if step else None})
        return guarded

    def _guard_result(self, state: _RunState, step: _Step, result: ExecResult) -> ExecResult:
        """``result`` with its frame redacted; the step's output says where."""
        if self.frame_guard is None:
            return result
        guarded = self._guard(state.session_id, result.frame, step=step,
                              typed_secret=step.secret and isinstance(step.action, TypeText))
        state.withheld, state.redacted = guarded.withheld, guarded.boxes
        output = {**result.output, "redacted": [list(box) for box in guarded.boxes]} \
            if guarded.boxes else result.output
        return replace(result, frame=guarded.frame, output=output)

    def _observe(self, state: _RunState, action: Action, result: ExecResult) -> None:
        context = state.context
        context.recent_action_times.append(self._clock())
        del context.recent_action_times[:-120]
        state.lines.commit()
        self._record_gate_verdicts(state)
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

    # -- helpers -------------------------------------------------------------

    def _report(self, step: _Step, status: StepStatus, message: str) -> None:
        decision = step.decision
        action = step.action or step.proposed.action
        rule_ids: tuple[str, ...] = ()
        if status == "invalid" or decision is None:
            description = action.describe() if action else "invalid action"
            effect, reason = "invalid", message
        else:
            description = _describe(action, decision) if action else "action"
            effect, rule_ids = decision.effect, decision.rule_ids
            reason = message if status == "error" else decision.reason
        self.reporter.on_step(StepReport(
            index=step.index, description=description, effect=effect, status=status,
            rule_ids=rule_ids, reason=reason,
            elapsed_ms=(self._clock() - step.started) * 1000,
            settle_ms=step.settle_ms, approver=step.approver,
        ))


StepStatus = Literal["done", "denied", "invalid", "error"]


@dataclass(slots=True)
class _Step:
    """One proposed action on its way through the pipeline, and what happened to it."""

    index: int
    proposed: ProposedAction
    started: float
    usage: Usage | None
    action: Action | None = None
    decision: Decision | None = None
    step_id: int | None = None
    asked: bool = False
    approver: str | None = None
    settle_ms: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _lap_at: float | None = None

    @property
    def secret(self) -> bool:
        return bool(self.decision and self.decision.secret)

    def recorded(self) -> tuple[Action, Decision, int]:
        """The valid action, its decision and its step id, once its intent is recorded."""
        if self.action is None or self.decision is None or self.step_id is None:
            raise RuntimeError(f"step {self.index}: its intent is not recorded yet")
        return self.action, self.decision, self.step_id

    def lap(self, name: str, now: float) -> None:
        """Record the milliseconds since the previous lap (or the start) as ``name``."""
        since = self._lap_at if self._lap_at is not None else self.started
        self.timings[name] = (now - since) * 1000
        self._lap_at = now


def _count(summary: RunSummary, status: StepStatus) -> None:
    if status == "done":
        summary.executed += 1
    elif status == "denied":
        summary.denied += 1
    elif status == "invalid":
        summary.invalid += 1
    else:
        summary.errors += 1


def _ending(exc: KeyboardInterrupt | SandboxError | PlannerError) -> tuple[Outcome, str, str]:
    """How a run that ``exc`` stopped ends: outcome, reason and the part that failed."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", interrupted_reason(exc), ""
    if isinstance(exc, SandboxError):
        return "error", f"sandbox failed: {exc}", "sandbox"
    return "error", f"planner failed: {exc}", "planner"


def _finish(turn: Turn) -> tuple[Outcome, str]:
    if turn.finished == "done":
        return "done", turn.message or "the planner reported the task done"
    return "failed", turn.message or "the planner gave up"


def _naming_the_line(decision: Decision, action: Action, line: str | None) -> Decision:
    """A refusal of an action that submits a line it does not show (Return after pieces,
    a paste) says which line, so the human approving it sees what would run."""
    if decision.allowed or line is None or not line.strip():
        return decision
    if isinstance(action, TypeText) and line in action.text:
        return decision
    shown = f"{len(line)} characters, secret" if decision.secret else repr(line)
    return replace(decision, reason=f"{decision.reason} [the line it submits: {shown}]")


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


def target_element(raw: object) -> TargetElement | None:
    """The element a grounded click aims at, if the planner named it: a script's
    ``click_element`` (role, name, box, source) or ``click_text`` (OCR's words)."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("click_text"), str):
        return TargetElement(role="text", name=raw["click_text"], source="ocr")
    return TargetElement.from_json(raw.get("click_element"))
