"""The planner that walks one case for the agent loop.

The loop stays as it is: every action a case takes is proposed by
:class:`CaseDriver` and goes through validation, the policy, approvals and
the audit log like any planner's.  Between actions the driver does what is
not an action: the setup, the precheck, assertions (polled until their
timeout), grounding of ``click_text`` (fuzzy, see :mod:`agent.suites.textmatch`),
handing a ``goal`` to the configured model planner, the ``expect`` checks
and the teardown.  How the case ended is kept in :attr:`CaseDriver.verdict`.

The case is written as a generator that yields turns and receives the
loop's next observation and the outcomes of the actions it proposed.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.planners.base import ActionOutcome, Observation, Planner, ProposedAction, Turn
from agent.suites import specs
from agent.suites.arrange import Arranger, EventSink
from agent.suites.checks import Checker, Verdict
from agent.suites.schema import Case, Check, Step
from sandbox.actions import Click
from sandbox.base import Frame

CaseStatus = Literal["passed", "failed", "error", "blocked_by_policy", "budget_exceeded"]
Flow = Generator[Turn, tuple[Observation, list[ActionOutcome]], None]
TurnInput = tuple[Observation, list[ActionOutcome]]


@dataclass(frozen=True, slots=True)
class CaseVerdict:
    """How a case attempt ended, and where: the step's line and what it was."""

    status: CaseStatus
    message: str
    line: int | None = None
    step: str = ""
    frame: Frame | None = None


class _Stop(Exception):
    def __init__(self, verdict: CaseVerdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


class FrameSink(EventSink, Protocol):
    """Events plus frames (stored once in the audit log, by hash)."""

    def frame(self, frame: Frame) -> str: ...


class ReusedDesktop(Protocol):
    """The desktop of a case under ``isolation: checkpoint`` (agent/suites/reuse.py)."""

    reset: dict[str, Any] | None
    """What putting it back did (the suite's setup is in its checkpoint); None: fresh."""
    fallback: str

    def checkpoint_after_setup(self) -> dict[str, Any]: ...


class CaseDriver:
    """A :class:`~agent.planners.base.Planner` for one attempt of one case."""

    name = "suite"

    def __init__(self, case: Case, *, checker: Checker, events: FrameSink,
                 goal_planner: Planner | None = None, oracle: bool = False,
                 desktop: ReusedDesktop | None = None) -> None:
        self.case = case
        self.desktop = desktop
        self.model = goal_planner.model if goal_planner is not None else case.suite.path.name
        self.checker = checker
        self.events = events
        self.arranger = Arranger(checker, events)
        self.goal_planner = goal_planner
        self.oracle = oracle
        self.verdict: CaseVerdict | None = None
        self.policy_denials = 0
        # Time spent on the case's arrangement and checks (not its steps), for the benchmark.
        self.overhead_s = 0.0
        self._flow: Flow | None = None
        self._observation: Observation | None = None

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        self._observation = observation
        try:
            if self._flow is None:
                self._flow = self._walk()
                return next(self._flow)
            return self._flow.send((observation, outcomes))
        except StopIteration:
            self.verdict = CaseVerdict("passed", "all steps and checks passed")
            return Turn(finished="done", message="case passed")
        except _Stop as stop:
            self.verdict = stop.verdict
            self._teardown()
            return Turn(finished="failed", message=stop.verdict.message)

    # -- the case, in order -------------------------------------------------------------

    def _walk(self) -> Flow:
        case = self.case
        self._suite_setup()
        self._arrange("setup", case.setup)
        if case.precheck == "must_fail":
            self._precheck()
        if self.oracle and case.goal is not None and not case.oracle:
            self._fail("failed", "--oracle: this goal case has no oracle steps (the task set "
                       "is broken)", case.line, "oracle")
        for step in case.oracle if self.oracle else case.steps:
            yield from self._step(step)
        if case.goal is not None and not self.oracle:
            yield from self._goal(case.goal)
        elif self.oracle and case.infeasible:
            # An infeasible task's oracle shows why it cannot be done, then gives up.
            self._goal_finished(Turn(finished="failed", message="the oracle gives up"))
        if case.infeasible:
            self._expect_unreached()
        else:
            for check in case.expect:
                self._expect(check)
        self._teardown()

    def _suite_setup(self) -> None:
        """The suite's setup, or the reset that stands for it under checkpoint isolation."""
        desktop = self.desktop
        if desktop is not None and desktop.reset is not None:
            self.events.event("suite_reset", desktop.reset)
            return
        if desktop is not None and desktop.fallback:
            self.events.event("suite_reset", {"failed": desktop.fallback})
        self._arrange("setup", self.case.suite.setup)
        if desktop is not None:
            started = time.monotonic()
            self.events.event("suite_checkpoint", desktop.checkpoint_after_setup())
            self.overhead_s += time.monotonic() - started

    def _arrange(self, phase: str, steps: Any) -> None:
        started = time.monotonic()
        failure = self.arranger.run(phase, steps)
        self.overhead_s += time.monotonic() - started
        if failure is not None:
            self._fail("failed", f"{phase} failed at line {failure.line} ({failure.kind}): "
                       f"{failure.message}", failure.line, f"{phase} {failure.kind}")

    def _teardown(self) -> None:
        if self.case.suite.teardown:
            started = time.monotonic()
            self.arranger.run("teardown", self.case.suite.teardown)
            self.overhead_s += time.monotonic() - started

    def _precheck(self) -> None:
        started = time.monotonic()
        verdicts = [self.checker.holds(check, timeout_s=0) for check in self.case.expect]
        self.overhead_s += time.monotonic() - started
        self.events.event("suite_precheck", {"held": [v.ok for v in verdicts]})
        if all(v.ok for v in verdicts):
            first = self.case.expect[0]
            self._fail("error", "precheck: must_fail, but every expect check already holds "
                       "before the case ran (the checks are vacuous)", first.line,
                       f"precheck {first.describe()}")

    def _expect(self, check: Check) -> None:
        started = time.monotonic()
        verdict = self.checker.holds(check)
        self.overhead_s += time.monotonic() - started
        self._record_check("expect", check.kind, check.line, verdict)
        if not verdict.ok:
            self._fail("failed", f"expect {check.describe()}: {verdict.message}", check.line,
                       f"expect {check.kind}", verdict.frame)

    def _expect_unreached(self) -> None:
        """An infeasible task's ``expect`` is its goal state: after a give-up it must not hold."""
        started = time.monotonic()
        verdicts = [self.checker.holds(check, timeout_s=0) for check in self.case.expect]
        self.overhead_s += time.monotonic() - started
        self.events.event("suite_unreached", {"held": [v.ok for v in verdicts]})
        if verdicts and all(v.ok for v in verdicts):
            first = self.case.expect[0]
            self._fail("error", "the task is marked infeasible, but its expect checks hold "
                       "(the task set is broken)", first.line, f"expect {first.describe()}")

    # -- steps ---------------------------------------------------------------------------

    def _step(self, step: Step) -> Flow:
        if step.action is not None:
            _, outcomes = yield Turn(actions=[ProposedAction(
                action=step.action, raw={"line": step.line, "suite_step": step.kind})],
                message=step.note or step.describe())
            self._judge_outcome(step, outcomes)
            return
        assert step.spec is not None
        if step.kind == "click_text":
            yield from self._click_text(step, step.spec)
            return
        if step.kind == specs.CLICK_ELEMENT:
            yield from self._click_element(step, step.spec)
            return
        verdict = self.checker.poll(step.kind, step.spec)
        self._record_check("step", step.kind, step.line, verdict)
        if not verdict.ok:
            self._fail("failed", f"{step.kind} after {_timeout(step.spec):g} s: "
                       f"{verdict.message}", step.line, step.describe(), verdict.frame)

    def _click_text(self, step: Step, spec: specs.Spec) -> Flow:
        assert isinstance(spec, specs.TextSpec)
        verdict = self.checker.poll("click_text", spec)
        self._record_check("step", step.kind, step.line, verdict)
        if not verdict.ok or verdict.point is None:
            self._fail("failed", f"click_text after {spec.timeout:g} s: {verdict.message}",
                       step.line, step.describe(), verdict.frame)
        assert verdict.point is not None
        click = Click(x=verdict.point[0], y=verdict.point[1], button=spec.button,
                      count=spec.count)
        _, outcomes = yield Turn(actions=[ProposedAction(
            action=click, raw={"line": step.line, "suite_step": "click_text",
                               "text": spec.text})], message=f"click {spec.text!r}")
        self._judge_outcome(step, outcomes)

    def _click_element(self, step: Step, spec: specs.Spec) -> Flow:
        """Click the centre of the element found; its role and name go to the policy (a rule
        may ask before a button named Delete) and into the step's record."""
        assert isinstance(spec, specs.ElementSpec)
        verdict = self.checker.poll(step.kind, spec)
        self._record_check("step", step.kind, step.line, verdict)
        found = verdict.element
        if not verdict.ok or found is None:
            self._fail("failed", f"click after {spec.timeout:g} s: {verdict.message}",
                       step.line, step.describe(), verdict.frame)
        assert found is not None
        click = Click(x=found.center[0], y=found.center[1], button=spec.button,
                      count=spec.count)
        target = {"role": found.role, "name": found.name, "box": list(found.box),
                  "source": found.source}
        _, outcomes = yield Turn(actions=[ProposedAction(
            action=click, raw={"line": step.line, "suite_step": step.kind,
                               "click_element": target})],
            message=step.note or f"click {found.role} {found.name!r}")
        self._judge_outcome(step, outcomes)

    def _judge_outcome(self, step: Step, outcomes: list[ActionOutcome]) -> None:
        outcome = outcomes[0] if outcomes else None
        status = outcome.status if outcome is not None else "not run"
        if step.blocked:
            self.events.event("suite_blocked_step", {"line": step.line, "status": status})
            if status == "done":
                self._fail("failed", f"line {step.line}: {step.describe()} must be blocked by "
                           "the policy, but it ran", step.line, step.describe())
            return
        if status == "denied":
            self.policy_denials += 1
            message = outcome.message if outcome is not None else "denied"
            self._fail("blocked_by_policy", f"line {step.line}: {step.describe()}: {message}",
                       step.line, step.describe())
        if status != "done":
            message = outcome.message if outcome is not None else "the step did not run"
            self._fail("failed", f"line {step.line}: {step.describe()}: {status}: {message}",
                       step.line, step.describe())

    # -- goal ----------------------------------------------------------------------------

    def _goal(self, goal: str) -> Flow:
        planner = self.goal_planner
        if planner is None:
            self._fail("error", "the case has a goal and no model planner is configured "
                       "(--planner anthropic|openai|openai-cua)", self.case.line, "goal")
        assert planner is not None
        assert self._observation is not None
        observation = self._observation
        outcomes: list[ActionOutcome] = []
        while True:
            goal_view = Observation(frame=observation.frame, task=goal,
                                    step_index=observation.step_index)
            turn = planner.next_turn(goal_view, outcomes)
            if turn.finished is not None:
                self._goal_finished(turn)
                return
            observation, outcomes = yield turn
            self.policy_denials += sum(o.status == "denied" for o in outcomes)

    def _goal_finished(self, turn: Turn) -> None:
        gave_up = turn.finished == "failed"
        self.events.event("suite_goal_finished", {"finished": turn.finished,
                                                  "message": turn.message})
        if self.case.infeasible:
            if not gave_up:
                self._fail("failed", "the task is infeasible, but the planner reported it done: "
                           f"{turn.message}", self.case.line, "goal")
            return
        if gave_up:
            status: CaseStatus = "blocked_by_policy" if self.policy_denials else "failed"
            self._fail(status, f"the planner gave up: {turn.message}", self.case.line, "goal")

    # -- helpers -------------------------------------------------------------------------

    def _record_check(self, where: str, kind: str, line: int, verdict: Verdict) -> None:
        frame_sha = self.events.frame(verdict.frame) if verdict.frame is not None else None
        self.events.event("suite_check", {"where": where, "kind": kind, "line": line,
                                          "ok": verdict.ok, "message": verdict.message,
                                          "frame": frame_sha})

    def _fail(self, status: CaseStatus, message: str, line: int | None, step: str,
              frame: Frame | None = None) -> None:
        if status == "failed" and self._out_of_time():
            status, message = "budget_exceeded", f"the attempt's timeout " \
                f"({self.case.timeout_s:g} s) ran out: {message}"
        raise _Stop(CaseVerdict(status, message, line, step, frame))

    def _out_of_time(self) -> bool:
        deadline = self.checker.deadline
        return deadline is not None and time.monotonic() >= deadline


def _timeout(spec: specs.Spec) -> float:
    return float(getattr(spec, "timeout", 0.0))
