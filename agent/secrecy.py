"""A run's secrets: where their values come from, and the guards put around a run.

``--secret NAME=SOURCE`` (repeatable) and a suite's ``defaults.secrets``
name a secret and where its value is read from, never the value itself:

* ``NAME=ENV_VAR`` — the environment variable ``ENV_VAR``;
* ``NAME=file:PATH`` — the file at ``PATH`` (one trailing newline dropped),
  which only its owner may read: a group- or world-readable file is refused.

The task text never supplies a value.  :func:`guard_run` wraps a run's
parts so that the value is typed only inside the sandbox, the planner is
told the names, the audit log scrubs the values, and every frame is
redacted before it is stored, shown or sent.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.planners.base import ActionOutcome, Observation, Planner, Turn
from sandbox.base import Frame, Sandbox
from sandbox.secrets import NAME, SecretSandbox, SecretValues, placeholder

if TYPE_CHECKING:
    from agent.frame_guard import FrameGuard
    from agent.perception.screen import ScreenParser

FILE_PREFIX = "file:"
MIN_VALUE_CHARS = 4


def parse_secret_specs(specs: Iterable[str]) -> dict[str, str]:
    """``NAME=SOURCE`` strings as ``{NAME: SOURCE}``; raises :class:`ConfigError`."""
    sources: dict[str, str] = {}
    for spec in specs:
        name, sep, source = spec.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not source:
            raise ConfigError(f"--secret {spec!r}: write NAME=ENV_VAR or NAME=file:PATH")
        if not NAME.fullmatch(name):
            raise ConfigError(f"--secret {spec!r}: the name must be letters, digits and _")
        if name in sources:
            raise ConfigError(f"--secret {name}: given twice")
        sources[name] = source
    return sources


def resolve_secrets(sources: Mapping[str, str],
                    environ: Mapping[str, str] | None = None) -> SecretValues:
    """Read each secret's value from its source; raises :class:`ConfigError` naming it."""
    env = os.environ if environ is None else environ
    return SecretValues({name: _read(name, source, env) for name, source in sources.items()})


def _read(name: str, source: str, env: Mapping[str, str]) -> str:
    if source.startswith(FILE_PREFIX):
        value = read_secret_file(name, Path(source.removeprefix(FILE_PREFIX)).expanduser())
    else:
        value = env.get(source, "")
        if not value:
            raise ConfigError(f"secret {name}: the environment variable {source} is not set")
    if len(value) < MIN_VALUE_CHARS:
        # Every stored string is scrubbed of the value: a shorter one would
        # blank innocent text all over the log.
        raise ConfigError(f"secret {name}: the value is shorter than {MIN_VALUE_CHARS} "
                          "characters")
    return value


def read_secret_file(name: str, path: Path) -> str:
    """The value in ``path``, which must be a regular file only its owner can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"secret {name}: cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"secret {name}: {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(f"secret {name}: {path} is readable by group or others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 {path}")
    if info.st_uid != os.getuid():
        raise ConfigError(f"secret {name}: {path} belongs to another user")
    value = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    if not value:
        raise ConfigError(f"secret {name}: {path} is empty")
    return value


def names_hint(names: Sequence[str]) -> str:
    """The line that tells a planner which secrets it may type (names only)."""
    listed = ", ".join(placeholder(name) for name in names)
    return (f"Secrets you may type without seeing them: {listed}. Type the placeholder "
            "exactly as written; the desktop receives the value. Never try to reveal it.")


class SecretNamesPlanner:
    """A planner told the run's secret names along with the task."""

    def __init__(self, inner: Planner, names: Sequence[str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self._hint = names_hint(names)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        task = f"{observation.task}\n\n{self._hint}"
        return self.inner.next_turn(replace(observation, task=task), outcomes)


@dataclass(frozen=True, slots=True)
class GuardedParts:
    """A run's parts with the secret guards around them."""

    sandbox: Sandbox
    planner: Planner
    frame_guard: FrameGuard | None


def make_frame_guard(parser: Callable[[], ScreenParser] | None,
                     secrets: SecretValues) -> FrameGuard | None:
    """The redactor a run's frames go through (``None`` without an OCR to read them)."""
    if parser is None:
        return None
    from agent.perception.redaction import FrameRedactor

    return FrameRedactor(parser, secrets=secrets.values())


def guard_run(sandbox: Sandbox, planner: Planner, secrets: SecretValues,
              frame_guard: FrameGuard | None) -> GuardedParts:
    """Placeholders typed in the sandbox, names told to the planner, frames redacted."""
    if not secrets:
        return GuardedParts(sandbox, planner, frame_guard)
    return GuardedParts(SecretSandbox(sandbox, secrets),
                        SecretNamesPlanner(planner, sorted(secrets)), frame_guard)


class RedactedScreenshots(SecretSandbox):
    """A run's sandbox as a suite checker sees it: placeholders typed, screenshots redacted.

    A checker's failing frame becomes evidence in the log and the reports, so
    it goes through the same guard as the loop's frames.
    """

    def __init__(self, inner: Sandbox, values: SecretValues, frame_guard: FrameGuard) -> None:
        super().__init__(inner, values)
        self.frame_guard = frame_guard

    def screenshot(self) -> Frame:
        return self.frame_guard.guard(self.inner.screenshot()).frame
