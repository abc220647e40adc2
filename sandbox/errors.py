"""Errors raised by sandboxes.

    SandboxError
    ├── SandboxUnavailable      a prerequisite is missing (Xvfb, Docker engine, image)
    ├── SandboxStateError       used before start, after stop, or started twice
    ├── SandboxCrashed          a sandbox process or the container died
    └── ExecutorError           the executor answered with an error
        └── ExecutorTimeout     a request passed its deadline

Docker, X and subprocess errors are translated into these where they enter.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of every sandbox failure."""


class SandboxUnavailable(SandboxError):
    """The sandbox cannot start on this machine; the message names the fix."""


class SandboxStateError(SandboxError):
    """The sandbox was used in the wrong state."""


class SandboxCrashed(SandboxError):
    """A process or container that the sandbox owns died."""


class ExecutorError(SandboxError):
    """The executor refused or failed a request."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ExecutorTimeout(ExecutorError):
    """A request did not complete before its deadline."""

    def __init__(self, message: str) -> None:
        super().__init__("deadline_exceeded", message)
