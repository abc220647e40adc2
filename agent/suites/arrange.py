"""Setup and teardown: the test's arrangement, run as the desktop user outside the policy.

These steps are not the agent's actions, so the policy does not judge them;
each is still recorded in the attempt's audit session as a ``suite_arrange``
event (what ran, on which line, how it ended, how long it took).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent.suites import specs
from agent.suites.checks import HOME_PATH_SH, Checker
from agent.suites.schema import ArrangeStep

_WRITE_FILE = HOME_PATH_SH + 'mkdir -p -- "$(dirname -- "$p")" && printf %s "$2" > "$p"'
_LAUNCH = 'nohup sh -c "$1" >/dev/null 2>&1 &'


class EventSink(Protocol):
    """Where the driver records what it did (the attempt's audit session)."""

    def event(self, kind: str, data: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class ArrangeFailure:
    line: int
    kind: str
    message: str


class Arranger:
    """Runs setup/teardown steps in one sandbox through a :class:`Checker`."""

    def __init__(self, checker: Checker, events: EventSink, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.checker = checker
        self.events = events
        self._sleep = sleep

    def run(self, phase: str, steps: Sequence[ArrangeStep]) -> ArrangeFailure | None:
        """Run ``steps`` in order; the first failure stops them and is returned."""
        for step in steps:
            started = time.monotonic()
            problem = self._one(step)
            self.events.event("suite_arrange", {
                "phase": phase, "kind": step.kind, "line": step.line,
                "spec": step.spec.model_dump(mode="json"), "ok": problem is None,
                "message": problem or "", "ms": round((time.monotonic() - started) * 1000, 1)})
            if problem is not None:
                return ArrangeFailure(step.line, step.kind, problem)
        return None

    def _one(self, step: ArrangeStep) -> str | None:
        spec, shell = step.spec, self.checker.shell
        if isinstance(spec, specs.ExecSpec):
            result = shell(spec.run, timeout_s=spec.timeout)
            if result.exit_code != 0:
                return (f"`{spec.run}` exited {result.exit_code}: "
                        f"{(result.stderr or result.stdout).strip()[:300]}")
            return None
        if isinstance(spec, specs.WriteFileSpec):
            result = shell(_WRITE_FILE, spec.path, spec.content)
            return None if result.exit_code == 0 else f"cannot write {spec.path}: " \
                f"{result.stderr.strip()[:300]}"
        if isinstance(spec, specs.LaunchSpec):
            result = shell(_LAUNCH, spec.run)
            return None if result.exit_code == 0 else f"cannot launch `{spec.run}`"
        if isinstance(spec, specs.WindowSpec):
            verdict = self.checker.poll("wait_for_window", spec)
            return None if verdict.ok else f"after {spec.timeout:g} s: {verdict.message}"
        if isinstance(spec, specs.WaitSpec):
            self._sleep(spec.seconds)
            return None
        raise TypeError(f"{step.kind} is not an arrangement step")
