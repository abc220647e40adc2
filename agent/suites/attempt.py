"""One attempt of one case, wired end to end: the one place a suite builds a run.

:func:`run_attempt` makes the attempt's fresh sandbox, the policy, the
approver, the goal planner (for ``goal`` cases), the case driver and the
agent loop, from the pieces of the run builder (:mod:`agent.runs`), runs it as one audit
session tagged with the suite, case and attempt, and returns the attempt's
:class:`~agent.suites.results.AttemptResult`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import runs, session_tap
from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, Perceiver, PolicyEngine, RunSummary
from agent.perception.elements import AccessibilityTree, SourceNotes, TextAsElements
from agent.perception.screen import ScreenParser, TextElement
from agent.planners.base import Planner
from agent.registry import SandboxInputs
from agent.secrecy import RedactedScreenshots, guard_run, make_frame_guard, resolve_secrets
from agent.settings import Settings
from agent.suites.checks import Checker
from agent.suites.driver import CaseDriver, CaseVerdict
from agent.suites.metering import metered_goal_planner, record_goal_metrics
from agent.suites.plan_cache import DEFAULT_CACHE_DIR
from agent.suites.results import AttemptResult
from agent.suites.reuse import Lease, WarmDesktops
from agent.suites.schema import Case
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame, Sandbox
from sandbox.errors import SandboxError, SandboxUnavailable

if TYPE_CHECKING:
    import docker

    from agent.perception.perceiver import Perception
    from agent.perception.targets import FrameElements
    from audit.log import AuditLog


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What every attempt of a run shares, from the command line."""

    settings: Settings
    run_id: str
    approval_timeout_s: float = 0.0
    keep_sandbox_on_failure: bool = False
    oracle: bool = False
    sandbox: str | None = None  # --sandbox: wins over the suite's defaults
    # The planner benchmark (agent.suites.benchmark): --cache, its folder, --budget-steps.
    cache: str = "off"
    cache_dir: Path = DEFAULT_CACHE_DIR
    budget_steps: int = 0
    # Set by the runner at Ctrl-C: every attempt's loop stops at its next step.
    interrupted: threading.Event = field(default_factory=threading.Event)


class Engine:
    """A Docker engine of the pool (``--engine URL``); the client is made on first use."""

    def __init__(self, url: str | None, environment: Mapping[str, str] | None = None) -> None:
        self.url = url
        # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to a tcp:// engine, as for `docker -H`.
        self._environment = dict(environment or {})
        self._client: docker.DockerClient | None = None
        self._digests: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.url or "default"

    def client(self) -> docker.DockerClient:
        """The engine's client; SandboxUnavailable when it does not answer."""
        import docker
        import docker.errors

        with self._lock:
            if self._client is None:
                try:
                    environment = dict(self._environment)
                    if self.url:
                        environment["DOCKER_HOST"] = self.url
                    self._client = docker.from_env(environment=environment)
                except docker.errors.DockerException as exc:
                    raise SandboxUnavailable(f"engine {self.label} does not answer: "
                                             f"{exc}") from None
            return self._client

    def close(self) -> None:
        """Close the client's connections (a later use makes a new client)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def alive(self) -> bool:
        import docker.errors

        try:
            return bool(self.client().ping())
        except (docker.errors.DockerException, SandboxError, OSError):
            return False

    def image_digest(self, image: str) -> str:
        if image not in self._digests:
            import docker.errors

            try:
                self._digests[image] = str(self.client().images.get(image).id)
            except (docker.errors.DockerException, SandboxError):
                self._digests[image] = ""
        return self._digests[image]


class SharedPerception:
    """The offline perception models, loaded once and used by one worker at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: Perception | None = None

    def _get(self) -> Perception:
        if self._loaded is None:
            from agent.perception.perceiver import Perception

            self._loaded = Perception.load()
        return self._loaded

    def parse(self, frame: Frame) -> list[TextElement]:
        with self._lock:
            return self._get().parser.parse(frame)

    def screen_parser(self) -> ScreenParser:
        """A parser of its own (for frame redaction) that shares the loaded OCR models."""
        from agent.perception.ocr import OcrScreenParser

        with self._lock:
            parser = self._get().parser
        return OcrScreenParser(parser.reader) if isinstance(parser, OcrScreenParser) else parser

    def triage(self, task: str) -> Triage | None:
        with self._lock:
            return self._get().triage(task)

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        with self._lock:
            return self._get().injection_risk(frame, task)

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        with self._lock:
            return self._get().typed_from_screen(text, frame, task)


@dataclass(slots=True)
class WorkerEnv:
    """What one worker owns or shares: its engine, the run's log and perception."""

    index: int
    engine: Engine
    log: AuditLog
    perception: SharedPerception
    kept: list[Sandbox] = field(default_factory=list)
    on_activity: Callable[[str], None] = lambda _text: None
    desktops: WarmDesktops = field(default_factory=WarmDesktops)
    """The desktop kept between cases under ``isolation: checkpoint``."""


class SessionTap(session_tap.SessionTap):
    """The audit log as the loop sees it, remembering the attempt's session id.

    The case driver records its own events (setup, checks) into the same session.
    """

    # -- the driver's sink ----------------------------------------------------------

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if self.session_id:
            self.log.record_event(self.session_id, kind, data)

    def frame(self, frame: Frame) -> str:
        return self.log.put_frame(frame)


def run_attempt(case: Case, attempt: int, repeat: int, options: RunOptions,
                env: WorkerEnv) -> AttemptResult:
    """Run one attempt of ``case`` in a fresh sandbox (or, under ``isolation: checkpoint``,
    the worker's desktop put back to its post-setup checkpoint); never raises for a
    failing case."""
    started, wall = time.monotonic(), time.time()
    result = _blank_result(case, attempt, repeat, options, env, wall)
    settings = _case_settings(options.settings, case)
    try:
        policy = runs.load_policy_named(case.policy)
        goal_planner = _goal_planner(settings, case, options, policy.sha256)
        lease = _lease_sandbox(settings, case, options, env)
    except (SandboxError, ValueError) as exc:
        return _ended(result, "error", f"cannot prepare the attempt: {exc}", started)
    box = lease.box
    result.policy_sha256 = policy.sha256
    result.isolation = "checkpoint" if lease.was_reset else "container"
    if not lease.running:
        try:
            box.start()
        except SandboxError as exc:
            env.desktops.give_back(lease, reusable=False)
            return _ended(result, "error", f"the sandbox did not start: {exc}", started)
    sandbox_ready = time.monotonic()
    keep = reusable = False
    try:
        tags = {"attempt": attempt, "repeat": repeat}
        summary, driver, tap = _drive(case, box, policy, goal_planner, settings, options, env,
                                      tags, lease)
        result.session_id, result.steps = tap.session_id, summary.steps
        _apply_outcome(result, summary, driver.verdict)
        result.budget_steps = options.budget_steps
        record_goal_metrics(result, goal_planner, env.log, tap.session_id)
        if options.interrupted.is_set() and result.status != "passed":
            result.status, result.message = "error", "interrupted by the user (Ctrl-C)"
        env.log.record_event(tap.session_id, "suite_result", {
            "status": result.status, "message": result.message, "line": result.line,
            "step": result.step, "run_id": options.run_id})
        result.overhead_s = (sandbox_ready - started) + driver.overhead_s
        keep = options.keep_sandbox_on_failure and result.status != "passed"
        reusable = result.status != "error" and not keep  # an error leaves the desktop in doubt
    finally:
        result.overhead_s += _release(box, lease, env, keep=keep, reusable=reusable)
    result.image = _image(box, env)
    return _ended(result, result.status, result.message, started)


def _release(box: Sandbox, lease: Lease, env: WorkerEnv, *, keep: bool,
             reusable: bool) -> float:
    """Keep, hand back or stop the attempt's sandbox; the seconds stopping it took."""
    if keep:
        env.desktops.give_back(lease, reusable=False)
        env.kept.append(box)
        return 0.0
    if env.desktops.give_back(lease, reusable=reusable):
        return 0.0
    stop_started = time.monotonic()
    box.stop()
    return time.monotonic() - stop_started


def _drive(case: Case, box: Sandbox, policy: PolicyEngine,
           goal_planner: Planner | None, settings: Settings, options: RunOptions,
           env: WorkerEnv, tags: dict[str, int],
           lease: Lease) -> tuple[RunSummary, CaseDriver, SessionTap]:
    deadline = time.monotonic() + case.timeout_s
    tap = SessionTap(env.log)
    secrets = resolve_secrets(dict(case.secrets))
    # Only cases whose suite names secrets pay for reading every frame.
    frame_guard = make_frame_guard(env.perception.screen_parser, secrets) if secrets else None
    seen = RedactedScreenshots(box, secrets, frame_guard) if frame_guard else box
    checker = Checker(seen, env.perception, deadline=deadline, environment={
        "DESKHAND_SUITE": case.suite.name, "DESKHAND_CASE": case.id,
        "DESKHAND_ATTEMPT": str(tags["attempt"]), "DESKHAND_REPEAT": str(tags["repeat"])})
    driver = CaseDriver(case, checker=checker, events=tap, goal_planner=goal_planner,
                        oracle=options.oracle,
                        desktop=lease if lease.warm is not None else None)
    # A scripted case's title is not an instruction: triaging it would only be noise
    # ("Mixed statuses: passes" reads as publishing).  A goal is triaged and its
    # screens read for injected instructions, as `deskhand run` does for models.
    perceiver: Perceiver | None = env.perception if goal_planner is not None else None
    guarded = guard_run(box, driver, secrets, frame_guard)
    loop = AgentLoop(
        sandbox=guarded.sandbox, planner=guarded.planner, policy=policy, audit=tap,
        frame_guard=guarded.frame_guard,
        approver=BrokerApprover(env.log),
        config=replace(runs.loop_config(settings), max_turns=case.max_steps,
                       approval_timeout_s=options.approval_timeout_s),
        session_extra={**runs.session_extra(box, settings), "suite": case.suite.name,
                       "suite_file": str(case.suite.path), "case": case.id,
                       **tags, "run_id": options.run_id, "engine": env.engine.label,
                       "worker": env.index},
        perceiver=perceiver,
        should_stop=lambda: options.interrupted.is_set() or time.monotonic() > deadline,
    )
    follows_screen = goal_planner is not None
    with _click_targets(box, settings, env, tap, follows_screen=follows_screen) as elements:
        loop.elements = elements
        summary = loop.run(case.goal or f"{case.suite.name}: {case.name}")
    return summary, driver, tap


def _click_targets(box: Sandbox, settings: Settings, env: WorkerEnv, tap: SessionTap, *,
                   follows_screen: bool) -> AbstractContextManager[FrameElements | None]:
    """What a click at bare coordinates is judged by, as in ``deskhand run``.

    A goal case's model follows the screen: the accessibility tree (``--parser a11y|auto``),
    then OCR's words, which cost nothing more since the injection guard reads its every
    frame anyway.  A scripted case's clicks were written by the suite's author, and its
    frames are not otherwise read: OCR there would add a read of every clicked frame
    (~1.5 s) to a case that takes a few seconds, so it gets the tree only, and only when
    the run reads one (a tree read takes 30-200 ms, once per clicked frame).  Each source's
    problem (xterm has no tree) is recorded once in the attempt's audit session.
    """
    tree = AccessibilityTree(box) if runs.parser_choice(settings).reads_tree else None
    words = TextAsElements(env.perception) if follows_screen else None
    notes = SourceNotes(lambda text: tap.event("elements_note", {"text": text}))
    return runs.element_finder(tree, words, settings, notes=notes)


def _apply_outcome(result: AttemptResult, summary: RunSummary,
                   verdict: CaseVerdict | None) -> None:
    if verdict is not None:
        result.status, result.message = verdict.status, verdict.message
        result.line, result.step = verdict.line, verdict.step
        if verdict.frame is not None:
            result.frame_sha256 = verdict.frame.sha256
        return
    if summary.outcome in {"budget", "interrupted"} or summary.reason.startswith("stopped after"):
        result.status = "budget_exceeded"
        result.message = (f"the attempt ran out of time ({summary.reason})"
                          if summary.outcome == "interrupted" else summary.reason)
        return
    result.status, result.message = "error", summary.reason


def _case_settings(settings: Settings, case: Case) -> Settings:
    return settings.with_overrides(policy=case.policy, network=case.network or None,
                                   max_steps=case.max_steps)


def _goal_planner(settings: Settings, case: Case, options: RunOptions,
                  policy_sha256: str) -> Planner | None:
    if case.goal is None or options.oracle or settings.planner == "script":
        return None
    return metered_goal_planner(runs.build_planner(settings), options.cache,
                                options.cache_dir, policy_sha256)


def _lease_sandbox(settings: Settings, case: Case, options: RunOptions,
                   env: WorkerEnv) -> Lease:
    kind = _sandbox_kind(settings, case, options)

    def make() -> Sandbox:
        return _make_sandbox(kind, settings, case, options, env)

    if case.isolation != "checkpoint" or kind == "fake":
        return Lease(make(), None)
    return env.desktops.lease((str(case.suite.path), kind, case.network), env.log, make)


def _sandbox_kind(settings: Settings, case: Case, options: RunOptions) -> str:
    kind = options.sandbox or case.sandbox or settings.sandbox
    if kind == "auto":
        kind = runs.choose_sandbox_kind(settings, lambda _note: None)
    return kind


def _make_sandbox(kind: str, settings: Settings, case: Case, options: RunOptions,
                  env: WorkerEnv) -> Sandbox:
    return runs.build_sandbox(kind, SandboxInputs(
        settings=settings.with_overrides(network=case.network), size=runs.screen_size(settings),
        watch=options.keep_sandbox_on_failure, label=f"{options.run_id[:8]}-{case.id}"[:60],
        docker_client=env.engine.client() if kind == "docker" else None))


def _image(box: Sandbox, env: WorkerEnv) -> str:
    image = str(getattr(box, "image", "") or "")
    if box.kind != "docker":
        return image
    from sandbox.build import DEFAULT_IMAGE

    return env.engine.image_digest(image or DEFAULT_IMAGE)


def _blank_result(case: Case, attempt: int, repeat: int, options: RunOptions, env: WorkerEnv,
                  wall: float) -> AttemptResult:
    return AttemptResult(
        run_id=options.run_id, suite=case.suite.name, file=str(case.suite.path), case=case.id,
        name=case.name, attempt=attempt, repeat=repeat, status="error", policy=case.policy,
        engine=env.engine.label, worker=env.index, started_at=wall, tags=list(case.tags),
        case_line=case.line, audit_db=str(env.log.path))


def _ended(result: AttemptResult, status: str, message: str, started: float) -> AttemptResult:
    result.status, result.message = status, message
    result.duration_s = round(time.monotonic() - started, 3)
    result.overhead_s = round(result.overhead_s, 3)
    return result
