"""The parts of one MCP session's run, built from settings in one place.

:func:`open_run` is the single function that asks the run builder
(:mod:`agent.runs`) for the sandbox, policy, audit log and perception — the
same choices and hardening as ``deskhand run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agent import runs
from agent.loop import PolicyEngine
from agent.registry import SandboxInputs
from agent.settings import Settings
from audit.log import AuditLog
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame, Sandbox


@dataclass(frozen=True, slots=True)
class RunParts:
    """Everything an MCP session's loop runs on; open while the ``with`` lasts."""

    sandbox: Sandbox
    policy: PolicyEngine
    log: AuditLog
    perception: runs.LazyPerception | None
    session_extra: dict[str, Any]


@contextmanager
def open_run(settings: Settings, *, watch: bool,
             note: Callable[[str], None]) -> Iterator[RunParts]:
    """Open the audit log and start the sandbox; both close when the ``with`` ends."""
    policy = runs.load_policy_named(settings.policy)
    perception = runs.LazyPerception() if settings.perception else None
    kind = runs.choose_sandbox_kind(settings, note)
    inputs = SandboxInputs(settings=settings, size=runs.screen_size(settings),
                           watch=watch and kind == "docker")
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    with AuditLog.open(settings.db_path, redact=settings.secrets()) as log, \
            runs.build_sandbox(kind, inputs) as box:
        yield RunParts(sandbox=box, policy=policy, log=log, perception=perception,
                       session_extra=runs.session_extra(box, settings))


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
