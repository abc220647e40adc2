"""The run builder: the one place a run is wired from settings.

Every front end asks here instead of building planner, sandbox, perception,
policy and log itself::

    plan = plan_run(settings, task=task, script=script)     # raises on bad input
    with open_run(plan, RunOptions(reporter=...)) as run:   # log + sandbox opened
        summary = run.loop.run(plan.task)                   # both closed after

:func:`plan_run` does everything that can fail on bad input (an unknown
planner, a broken script or policy file) before anything starts, so a front
end can report it at once.  :func:`open_run` opens the audit log and the
sandbox and hands back a ready :class:`~agent.loop.AgentLoop`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.approvals import Approver, BrokerApprover, BrokerLog, TerminalPrompt
from agent.egress import NetworkLog, RunEgress, egress_for_run, network_rules
from agent.errors import ConfigError
from agent.loop import AgentLoop, AuditRecorder, LoopConfig, Perceiver, PolicyEngine, Reporter
from agent.perception.background import BackgroundPerception, OnDemandParser
from agent.perception.parsers import ParserChoice
from agent.registry import PLANNERS, SANDBOXES, PlannerInputs, SandboxInputs, elements_mode
from agent.run_notes import RunNotes
from agent.secrecy import guard_run, make_frame_guard, parse_secret_specs, resolve_secrets
from agent.settings import Settings
from agent.undo import CheckpointBounds, StepCheckpoints
from policies.decision import Triage, TypedFromScreen
from policies.network import NetworkRules
from sandbox.base import Frame, Sandbox, Size
from sandbox.egress.resolver import Resolver
from sandbox.secrets import SecretValues

if TYPE_CHECKING:
    from agent.perception.elements import Element, ElementSource
    from agent.perception.perceiver import Perception
    from agent.perception.screen import ScreenParser, TextElement
    from agent.perception.targets import FrameElements
    from agent.planners.base import Planner
    from agent.planners.script import TextLocator

Note = Callable[[str], None]


class RunLog(AuditRecorder, BrokerLog, NetworkLog, Protocol):
    """What a run needs of the audit log: the recorder, the approval broker, egress."""


SandboxFactory = Callable[[str, SandboxInputs], Sandbox]
LogOpener = Callable[[Path, list[str]], AbstractContextManager[RunLog]]


def build_sandbox(kind: str, inputs: SandboxInputs) -> Sandbox:
    """The registered sandbox of ``kind`` (already resolved from ``auto``)."""
    return SANDBOXES.get(kind).build(inputs)


def open_audit_log(path: Path, redact: list[str]) -> AbstractContextManager[RunLog]:
    from audit.log import AuditLog

    path.parent.mkdir(parents=True, exist_ok=True)
    return AuditLog.open(path, redact=redact)


@dataclass(frozen=True, slots=True)
class RunServices:
    """The factories a run's clients come from; tests pass their own."""

    make_sandbox: SandboxFactory = build_sandbox
    open_log: LogOpener = open_audit_log


@dataclass(frozen=True, slots=True)
class RunPlan:
    """A run whose inputs were all checked: planner built, policy loaded."""

    task: str
    planner: Planner
    policy: PolicyEngine
    settings: Settings
    perceiver: Perceiver | None = None
    secrets: SecretValues = field(default_factory=SecretValues)
    perception: LazyPerception | None = None
    """Told the sandbox once it runs (``--parser a11y|auto`` read its accessibility tree)."""


def screen_size(settings: Settings) -> Size:
    try:
        return Size.parse(settings.screen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def load_policy_named(name_or_path: str) -> PolicyEngine:
    """A shipped profile by name, or a policy file by path."""
    from policies import engine

    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return engine.load_policy(path)
    return engine.load_profile(name_or_path)


def build_planner(settings: Settings, *, script: Path | None = None,
                  locator: TextLocator | None = None) -> Planner:
    """The planner the settings name, its client built by its registered factory."""
    return PLANNERS.get(settings.planner).build(PlannerInputs(
        settings=settings, size=screen_size(settings), script=script, locator=locator))


def plan_run(settings: Settings, *, task: str | None = None,
             script: Path | None = None) -> RunPlan:
    """Build the planner and load the policy; raises :class:`ConfigError` on bad input."""
    kind = PLANNERS.get(settings.planner)
    if settings.sandbox != "auto":
        SANDBOXES.get(settings.sandbox)
    choice = parser_choice(settings)
    if elements_mode(settings) != "off" and not settings.perception:
        raise ConfigError(f"--elements {settings.elements} reads the screen: drop "
                          "--no-perception")
    perception = LazyPerception(choice) if settings.perception else None
    planner = build_planner(settings, script=script, locator=perception)
    task_text = (task or "").strip() or _script_task(planner)
    if not task_text:
        raise ConfigError("say what to do: give a TASK, or a script that brings one")
    perceiver: Perceiver | None = None
    if perception is not None:
        perceiver = BackgroundPerception(perception, warm_up=perception.load_reader) \
            if kind.follows_screen else TriageOnly(perception)
    secrets = resolve_secrets(parse_secret_specs(settings.secret))
    plan = RunPlan(task=task_text, planner=planner, policy=load_policy_named(settings.policy),
                   settings=settings, perceiver=perceiver, secrets=secrets,
                   perception=perception)
    run_network_rules(plan)  # a bad --allow-host is bad input too: say so before anything starts
    return plan


def _script_task(planner: Planner) -> str:
    script = getattr(planner, "script", None)
    return str(getattr(planner, "task", None) or getattr(script, "task", "") or "")


def choose_sandbox_kind(settings: Settings, note: Note) -> str:
    """Resolve ``auto``: Docker when an engine answers and the image is built, else local."""
    if settings.sandbox != "auto":
        return settings.sandbox
    from sandbox.manage import docker_ready

    ready, why = docker_ready()
    if ready:
        note("sandbox: docker (engine answers, image built)")
        return "docker"
    note(f"sandbox: local Xvfb ({why})")
    return "local"


def loop_config(settings: Settings) -> LoopConfig:
    """The loop's limits from settings; the settle profile, and whether the planner reads
    an element list, from the planner's kind."""
    kind = PLANNERS.get(settings.planner)
    return LoopConfig(max_turns=settings.max_steps,
                      approval_timeout_s=settings.approval_timeout_s,
                      action_deadline_s=settings.action_deadline_s,
                      max_cost_usd=settings.max_cost_usd,
                      settle_profile=kind.settle_profile,
                      list_elements=settings.elements != "off" and kind.follows_screen)


def session_extra(box: Sandbox, settings: Settings,
                  extra: dict[str, object] | None = None) -> dict[str, object]:
    """What the session record says about the sandbox beyond its kind and size."""
    described: dict[str, object] = {
        "image": getattr(box, "image", ""),
        "network": bool(getattr(box, "network", False)),
        "policy_source": settings.policy,
        **(extra or {}),
    }
    viewer = box.viewer
    if viewer is not None:  # where to watch (never the password), for approvers elsewhere
        described["viewer"] = f"{viewer.host}::{viewer.port}"
    return described


@dataclass(slots=True)
class RunOptions:
    """How a front end wants its run: who reports, who answers, when to stop."""

    reporter: Reporter | None = None
    prompt: TerminalPrompt | None = None
    unattended: bool = False
    """No human here: wait only for approvers attached to the database; none, deny at once."""
    wrap_approver: Callable[[Approver], Approver] = lambda approver: approver
    should_stop: Callable[[], bool] = lambda: False
    stop_reason: Callable[[], str] = lambda: "stopped by the user"
    watch: bool = False
    engine_url: str | None = None
    note: Note = lambda _text: None
    session_extra: dict[str, object] = field(default_factory=dict)
    services: RunServices = field(default_factory=RunServices)
    resolver: Resolver | None = None  # the egress proxy's name resolution (tests map names)


@dataclass(frozen=True, slots=True)
class OpenRun:
    """A wired run: the loop, and the log and sandbox it uses (open)."""

    loop: AgentLoop
    log: RunLog
    sandbox: Sandbox


@contextmanager
def open_run(plan: RunPlan, options: RunOptions | None = None) -> Iterator[OpenRun]:
    """Open the audit log and the sandbox, yield the loop; close both after."""
    options = options or RunOptions()
    rules = run_network_rules(plan)
    settings = plan.settings.with_overrides(network=True if rules.mode == "full" else None)
    notes = RunNotes(options.note)
    kind = choose_sandbox_kind(settings, notes)
    services = options.services
    redact = [*settings.secrets(), *plan.secrets.values()]
    with services.open_log(settings.db_path, redact) as log, closing(notes):
        egress = egress_for_run(rules, log, approval_timeout_s=settings.approval_timeout_s,
                                resolver=options.resolver)
        inputs = SandboxInputs(settings=settings, size=screen_size(settings),
                               watch=options.watch, engine_url=options.engine_url,
                               egress=egress.proxy.handle if egress.proxy else None)
        with services.make_sandbox(kind, inputs) as box:
            if plan.perception is not None:
                plan.perception.attach(box, note=notes)
            loop = _loop(plan, options, log, box, egress, notes)
            loop.before_execute = checkpoints_for(kind, log, box)
            follows = PLANNERS.get(settings.planner).follows_screen
            with run_elements(plan.perception, settings, follows_screen=follows) as elements:
                loop.elements = elements
                yield OpenRun(loop=loop, log=log, sandbox=box)


def run_elements(perception: LazyPerception | None, settings: Settings, *,
                 follows_screen: bool) -> AbstractContextManager[FrameElements | None]:
    """The run's elements per frame (``None`` without perception), closed when the ``with``
    ends: see :func:`element_finder`.  ``perception`` is attached to the run's sandbox."""
    if perception is None:
        return nullcontext()
    screen = ParsedElements(perception) if follows_screen else None
    return element_finder(perception.tree, screen, settings, notes=perception.notes)


@contextmanager
def element_finder(tree: ElementSource | None, screen: ElementSource | None,
                   settings: Settings, *, notes: Note | None = None,
                   ) -> Iterator[FrameElements | None]:
    """What every front end (``deskhand run``, ``deskhand mcp``, suites) judges a click at
    bare coordinates by, and lists for a planner: the accessibility tree when the run's
    parser reads one (``tree``: ``--parser a11y|auto``), then the screen parser's elements
    (``screen``) for planners that follow the screen (a model's frames are read for
    injected instructions anyway, so OCR's words cost nothing more; a script's are not).
    ``None`` when there is neither; closed when the ``with`` ends."""
    sources = [source for source in (tree, screen) if source is not None]
    if not sources:
        yield None
        return
    from agent.perception.targets import FrameElements

    finder = FrameElements(sources, wait_s=settings.elements_wait_s, note=notes)
    try:
        yield finder
    finally:
        finder.close()


def checkpoints_for(kind: str, log: RunLog, box: Sandbox) -> StepCheckpoints | None:
    """Checkpoints and live undo for the desktop's writable folders (its home and /tmp:
    a container's tmpfs, the local sandbox's private ones).  Not for the fake sandbox,
    which has no files."""
    from audit.log import AuditLog

    roots = getattr(box, "writable_roots", None)
    if kind == "fake" or not roots or not isinstance(log, AuditLog):
        return None
    return StepCheckpoints(box, log, CheckpointBounds(roots=tuple(roots)))


def run_network_rules(plan: RunPlan) -> NetworkRules:
    """The policy's network section with the run's ``--allow-host`` and ``--network``."""
    policy_rules = getattr(plan.policy, "network", None)
    return network_rules(policy_rules if isinstance(policy_rules, NetworkRules)
                         else NetworkRules(), allow_hosts=plan.settings.allow_hosts,
                         full=plan.settings.network)


def _loop(plan: RunPlan, options: RunOptions, log: RunLog, box: Sandbox,
          egress: RunEgress, notes: RunNotes) -> AgentLoop:
    settings = plan.settings
    approver = options.wrap_approver(_broker_approver(log, settings, options))
    extra = {**options.session_extra, "egress": {**egress.describe(),
                                                 "sandbox": getattr(box, "egress_mode", "off")}}
    frame_guard = make_frame_guard(_redaction_parser(plan), plan.secrets)
    guarded = guard_run(box, plan.planner, plan.secrets, frame_guard)
    return AgentLoop(
        sandbox=guarded.sandbox, planner=guarded.planner, policy=plan.policy, audit=log,
        approver=approver, reporter=options.reporter, config=loop_config(settings),
        session_extra=session_extra(box, settings, extra),
        perceiver=plan.perceiver, should_stop=options.should_stop,
        stop_reason=options.stop_reason,
        on_session=lambda session_id: _session_started(session_id, log, egress, notes),
        frame_guard=frame_guard,
    )


def _session_started(session_id: str, log: RunLog, egress: RunEgress, notes: RunNotes) -> None:
    egress.start_session(session_id)
    notes.start(log, session_id)


def _redaction_parser(plan: RunPlan) -> Callable[[], ScreenParser] | None:
    """The OCR frames are redacted with: perception's, or its own when only secrets need it."""
    if plan.perception is not None:
        return plan.perception.screen_parser
    return LazyPerception().screen_parser if plan.secrets else None


def _broker_approver(log: RunLog, settings: Settings, options: RunOptions) -> BrokerApprover:
    if not options.unattended:
        return BrokerApprover(log, prompt=options.prompt)
    from audit.presence import ApproverPresence

    return BrokerApprover(log, anyone_attached=ApproverPresence(settings.db_path).anyone_attached,
                          say=options.note)


# -- perception --------------------------------------------------------------


class TriageOnly:
    """Perception for planners that do not follow the screen: triage, no injection reading.

    A script does not take instructions from the screen, so there is nothing
    for injected text to steer; reading every frame would only slow it down.
    """

    def __init__(self, perception: Perceiver) -> None:
        self.perception = perception

    def triage(self, task: str) -> Triage | None:
        return self.perception.triage(task)

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        return 0.0, ""

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return None


class LazyPerception:
    """Loads the perception models on first use, in whichever thread needs them.

    Loading takes about a second; the TUI prepares runs on its UI thread and
    must not freeze there.
    """

    def __init__(self, choice: ParserChoice | None = None) -> None:
        from agent.perception.elements import SourceNotes

        self.choice = choice
        self._loaded: Perception | None = None
        self.tree: ElementSource | None = None
        self.notes = SourceNotes()
        """Where the element sources' problems go, each once per run (a window with no
        tree, a source too slow to answer)."""

    def attach(self, sandbox: Sandbox, *, note: Note | None = None) -> None:
        """Read ``sandbox``'s accessibility tree for elements when the parser is a11y/auto;
        tell ``note`` (once per run each) what the element sources cannot read."""
        from agent.perception.elements import SourceNotes

        if note is not None:
            self.notes = SourceNotes(note)
        if self.choice is not None and self.choice.reads_tree:
            from agent.perception.elements import AccessibilityTree

            self.tree = AccessibilityTree(sandbox)

    def _get(self) -> Perception:
        if self._loaded is None:
            self._loaded = _lean_perception(self.choice)
        return self._loaded

    def triage(self, task: str) -> Triage | None:
        return self._get().triage(task)

    def load_reader(self) -> None:
        """Load the OCR models now (a background warm-up) instead of at the first read."""
        parser = self._get().parser
        load = getattr(parser, "load", None)
        if load is not None:
            load()

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        return self._get().injection_risk(frame, task)

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None:
        return self._get().locate(frame, text)

    def screen_parser(self) -> ScreenParser:
        """The OCR parser itself, for frame redaction.

        Shared on purpose: the injection guard then reads a frame the redactor
        left unchanged from the parser's cache instead of a second time.
        """
        return self._get().parser

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return self._get().typed_from_screen(text, frame, task)

    def read(self, frame: Frame) -> list[TextElement]:
        return self._get().read(frame)

    def elements(self, frame: Frame) -> list[Element]:
        """The frame's elements as the chosen parser sees them (OCR: one per phrase;
        a11y/auto: the accessibility tree where the app exposes one, then OCR)."""
        from agent.perception.elements import CombinedSource

        tree = [self.tree] if self.tree is not None else []
        return CombinedSource(*tree, ParsedElements(self), note=self.notes).elements(frame)

    def parsed_elements(self, frame: Frame) -> list[Element]:
        """What the parser reads on ``frame`` as elements (its models load on first use)."""
        from agent.perception.elements import ElementSource, TextAsElements

        parser = self._get().parser
        loaded = parser.load() if isinstance(parser, OnDemandParser) else parser
        source: ElementSource = loaded if isinstance(loaded, ElementSource) \
            else TextAsElements(loaded)
        return source.elements(frame)


class ParsedElements:
    """The parser's elements as an element source (OCR's phrases, or a VLM's elements)."""

    def __init__(self, perception: LazyPerception) -> None:
        self.perception = perception

    def elements(self, frame: Frame) -> list[Element]:
        return self.perception.parsed_elements(frame)


def parser_choice(settings: Settings) -> ParserChoice:
    """The settings' ``--parser``, checked; raises :class:`ConfigError` when unusable."""
    from agent.perception.parsers import UnknownParser

    key = settings.openai_api_key
    choice = ParserChoice(kind=settings.parser, vlm_base_url=settings.vlm_base_url,
                          vlm_model=settings.vlm_model,
                          vlm_api_key=key.get_secret_value() if key else "local")
    try:
        choice.check()
    except UnknownParser as exc:
        raise ConfigError(str(exc)) from None
    return choice


def _lean_perception(choice: ParserChoice | None = None) -> Perception:
    """Perception holding only what a run needs: the OCR models load at the first frame
    read (with one inference thread: it reads while the planner waits), the triager only
    while it classifies the task (see agent/perception/background.py)."""
    from agent.perception.background import OnceTriager
    from agent.perception.ocr import OcrScreenParser, RapidOcrReader
    from agent.perception.parsers import build_parser
    from agent.perception.perceiver import Perception
    from agent.perception.triage import CentroidTriager

    def ocr() -> OcrScreenParser:
        return OcrScreenParser(RapidOcrReader.load(threads=OCR_THREADS))

    return Perception(parser=OnDemandParser(lambda: build_parser(choice or ParserChoice(), ocr)),
                      triager=OnceTriager(CentroidTriager.load))


OCR_THREADS = 1


def describe_run(box: Sandbox, policy: PolicyEngine, settings: Settings) -> list[str]:
    """The lines a front end prints when a run starts."""
    lines = [f"deskhand: {box.kind} sandbox {box.size}, policy {policy.name} "
             f"({policy.sha256[:12]}), log {settings.db_path}"]
    viewer: Any = box.viewer
    if viewer is not None:
        mode = "view-only" if viewer.view_only else "interactive"
        lines.append(f"  watch over VNC ({mode}): vncviewer {viewer.host}::{viewer.port}  "
                     f"password: {viewer.password}")
    return lines
