"""Secret placeholders: the planner types ``{{secret:NAME}}``, the sandbox types the value.

A run names its secrets (``--secret NAME=ENV_VAR``); only the names travel
upwards (to the planner, the policy, the audit log).  The values live in a
:class:`SecretValues` in this process's memory and are put into the typed
text by :class:`SecretSandbox` at the last moment, just before the action
is handed to the executor inside the sandbox::

    box = SecretSandbox(LocalSandbox(size=size), SecretValues({"TOKEN": value}))
    box.execute(TypeText(text="export TOKEN={{secret:TOKEN}}\\n"))

Nothing on the host side records the substituted action: the loop, the
policy and the audit log only ever see the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from sandbox.actions import Action, ActionError, TypeText
from sandbox.base import CheckResult, ExecResult, Frame, Sandbox, ShellJudge, Size, Viewer
from sandbox.errors import ExecutorError

PLACEHOLDER = re.compile(r"\{\{\s*secret:([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def placeholder(name: str) -> str:
    """What the planner types for secret ``name``."""
    return f"{{{{secret:{name}}}}}"


def placeholder_names(text: str) -> list[str]:
    """The secret names ``text`` refers to, in order."""
    return [match.group(1) for match in PLACEHOLDER.finditer(text)]


def without_placeholders(text: str) -> str:
    """``text`` with each placeholder replaced by a neutral word (for the secret detectors)."""
    return PLACEHOLDER.sub("secret", text)


def has_placeholder(action: Action) -> bool:
    """Whether ``action`` types a secret placeholder."""
    return isinstance(action, TypeText) and PLACEHOLDER.search(action.text) is not None


class SecretValues(Mapping[str, str]):
    """Secret values by name, held in memory only; ``repr`` names, never values."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})
        for name in self._values:
            if not NAME.fullmatch(name):
                raise ValueError(f"secret name {name!r} must be letters, digits and _")

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretValues(names={sorted(self._values)})"

    def substitute(self, text: str) -> str:
        """``text`` with every placeholder replaced by its value.

        Raises :class:`ActionError` naming an unknown placeholder (never a value).
        """
        unknown = [name for name in placeholder_names(text) if name not in self._values]
        if unknown:
            known = ", ".join(sorted(self._values)) or "none"
            raise ActionError(f"unknown secret placeholder {placeholder(unknown[0])} "
                              f"(secrets this run knows: {known})")
        return PLACEHOLDER.sub(lambda match: self._values[match.group(1)], text)

    def unsubstitute(self, text: str) -> str:
        """``text`` with every value put back as its placeholder (longest values first)."""
        for name, value in sorted(self._values.items(), key=lambda item: -len(item[1])):
            text = text.replace(value, placeholder(name))
        return text


class SecretSandbox:
    """A sandbox that types secret values where the action says ``{{secret:NAME}}``.

    Everything else is the wrapped sandbox's: its attributes (``image``,
    ``network``...) read through.
    """

    def __init__(self, inner: Sandbox, values: SecretValues) -> None:
        self.inner = inner
        self.values = values
        self.kind = inner.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def size(self) -> Size:
        return self.inner.size

    @property
    def viewer(self) -> Viewer | None:
        return self.inner.viewer

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def __enter__(self) -> SecretSandbox:
        self.inner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.stop()

    def screenshot(self) -> Frame:
        return self.inner.screenshot()

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        if isinstance(action, TypeText) and PLACEHOLDER.search(action.text):
            action = action.model_copy(update={"text": self._substituted(action.text)})
        return self.inner.execute(action, settle=settle, deadline_s=deadline_s,
                                  settle_profile=settle_profile)

    def check(self, argv: list[str], *, timeout_s: float = 30.0) -> CheckResult:
        return self.inner.check(argv, timeout_s=timeout_s)

    def read_selection(self, name: str = "clipboard") -> str | None:
        return self.inner.read_selection(name)

    def serve_shell_gate(self, judge: ShellJudge) -> None:
        """The gate judges commands as the loop knows them: values back to placeholders.

        The loop let through the line it typed (with ``{{secret:NAME}}``); the
        desktop's shell runs it with the value.  Put back, the command matches
        the line judged already, and the gate's records never hold the value.
        """
        self.inner.serve_shell_gate(lambda command: judge(self.values.unsubstitute(command)))

    def _substituted(self, text: str) -> str:
        try:
            return self.values.substitute(text)
        except ActionError as exc:  # goes back to the planner like any refused action
            raise ExecutorError("unknown_secret", str(exc)) from None
