"""The parts of one MCP session's run, built from settings in one place.

:func:`open_run` is the single function that asks the run builder
(:mod:`agent.runs`) for the sandbox, policy, audit log, perception and the
element finder that judges a click at coordinates by what it lands on — the
same choices and hardening as ``deskhand run`` gives a model planner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent import runs
from agent.loop import PolicyEngine
from agent.registry import SandboxInputs
from agent.settings import Settings
from audit.log import AuditLog
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame, Sandbox

if TYPE_CHECKING:
    from agent.perception.targets import FrameElements


@dataclass(frozen=True, slots=True)
class RunParts:
    """Everything an MCP session's loop runs on; open while the ``with`` lasts."""

    sandbox: Sandbox
    policy: PolicyEngine
    log: AuditLog
    perception: runs.LazyPerception | None
    session_extra: dict[str, Any]
    elements: FrameElements | None = None
    """The element under each click (``None`` without perception)."""


@contextmanager
def open_run(settings: Settings, *, watch: bool, note: Callable[[str], None],
             services: runs.RunServices | None = None) -> Iterator[RunParts]:
    """Open the audit log, start the sandbox and the element finder; all close when the
    ``with`` ends (``services``: the sandbox factory, for tests)."""
    policy = runs.load_policy_named(settings.policy)
    perception = runs.LazyPerception(runs.parser_choice(settings)) \
        if settings.perception else None
    kind = runs.choose_sandbox_kind(settings, note)
    inputs = SandboxInputs(settings=settings, size=runs.screen_size(settings),
                           watch=watch and kind == "docker")
    make_sandbox = (services or runs.RunServices()).make_sandbox
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    with AuditLog.open(settings.db_path, redact=settings.secrets()) as log, \
            make_sandbox(kind, inputs) as box:
        if perception is not None:
            perception.attach(box, note=note)
        # The client is a model that follows the screen, as a model planner of `deskhand run`.
        with runs.run_elements(perception, settings, follows_screen=True) as elements:
            yield RunParts(sandbox=box, policy=policy, log=log, perception=perception,
                           session_extra=runs.session_extra(box, settings), elements=elements)


class ScreenOnlyPerception:
    """Perception for an MCP session: no task to triage, but every frame read for injection.

    The client is a model that reads the screen, so on-screen instructions
    aimed at it matter exactly as for a model planner of ``deskhand run``.
    """

    def __init__(self, perception: runs.LazyPerception) -> None:
        self.perception = perception

    def triage(self, task: str) -> Triage | None:
        return None

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        return self.perception.injection_risk(frame, task)

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return self.perception.typed_from_screen(text, frame, task)
