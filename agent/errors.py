"""Errors of the agent layer (loop, CLI, script files).

    DeskhandError
    ├── ConfigError        settings or flags that cannot work together
    ├── ScriptError        a script file that cannot be loaded (names file, line, field)
    └── RunAborted         the loop stopped before the task finished (reason in message)

Sandbox, policy, audit and planner failures have their own trees in their
packages; the CLI turns all of them into one readable line and an exit code.
"""

from __future__ import annotations


class DeskhandError(Exception):
    """Base class of deskhand's agent-layer errors."""


class ConfigError(DeskhandError):
    """A configuration that cannot work; the message names the fix."""


class ScriptError(DeskhandError):
    """A malformed script file."""


class RunAborted(DeskhandError):
    """The run stopped early."""
