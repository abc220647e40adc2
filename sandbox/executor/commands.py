"""The ``run`` op: commands as argument lists, each in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

from .wire import RequestError

MAX_ARGV = 1000
MAX_OUTPUT_CHARS = 64 * 1024  # per run stream; keeps a response header well under 1 MiB


def run_argv(argv: Any) -> list[str]:
    if not isinstance(argv, list) or not 1 <= len(argv) <= MAX_ARGV:
        raise RequestError("bad_request", f"argv must be a list of 1..{MAX_ARGV} strings")
    if not all(isinstance(arg, str) and "\x00" not in arg for arg in argv):
        raise RequestError("bad_request", "argv items must be strings without NUL")
    return argv


class Commands:
    """Runs ``run`` requests, each in its own process group, and remembers the groups.

    A command's background children stay in its group, so :meth:`end_all` (called
    when the executor exits) takes them down too.
    """

    def __init__(self) -> None:
        self._groups: set[int] = set()

    def run(self, argv: list[str], stdin: str | None, timeout_s: float) -> dict[str, Any]:
        """Run ``argv`` in the home directory; the whole group is killed on timeout."""
        if timeout_s <= 0:
            raise RequestError("deadline_exceeded", "no time left to run the command")
        proc = self._start(argv, stdin is not None)
        try:
            out, err = proc.communicate(None if stdin is None else stdin.encode("utf-8"),
                                        timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)  # a child that left the group may hold the pipes
            raise RequestError("deadline_exceeded",
                               f"{argv[0]!r} still ran after {timeout_s:.3g}s; killed") from None
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return {"exit_code": proc.returncode, "stdout": stdout[:MAX_OUTPUT_CHARS],
                "stderr": stderr[:MAX_OUTPUT_CHARS],
                "truncated": max(len(stdout), len(stderr)) > MAX_OUTPUT_CHARS}

    def _start(self, argv: list[str], with_stdin: bool) -> subprocess.Popen[bytes]:
        self._groups = {group for group in self._groups if _group_exists(group)}
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                cwd=os.path.expanduser("~"))
        except OSError as exc:
            raise RequestError("run_failed", f"cannot run {argv[0]!r}: {exc.strerror}") from None
        self._groups.add(proc.pid)
        return proc

    def end_all(self) -> None:
        """Kill what is left of every command's process group."""
        for group in self._groups:
            _kill_group(group)
        self._groups.clear()


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


