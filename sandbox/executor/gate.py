"""The in-sandbox half of the second gate: interactive bash asks before each command.

The desktop's read-only system bashrc (``sandbox/desktop/bash.bashrc``) sets
``shopt -s extdebug`` and a ``DEBUG`` trap that, before every simple command,
connects to ``127.0.0.1:GATE_PORT`` (loopback of the sandbox's own network
namespace), sends the command text (``$BASH_COMMAND``) and a NUL, and reads
back ``allow`` or ``deny REASON``; the trap's status 1 makes bash skip the
command.  This module serves that port inside the executor and forwards each
command to the host as an *event* on the executor's channel::

    {"id": null, "ok": true, "event": "shell_command", "gate": 7, "line": "rm -rf ~/keep"}

The host judges it with the run's policy and answers with the request
``gate_verdict {"gate": 7, "allow": false, "reason": "..."}``.  No answer in
time, a malformed request or a broken connection all deny: the gate fails
closed.  Self-contained like the rest of the executor package (standard library only).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from typing import Any

GATE_PORT = 47391  # also written in bash.bashrc, which is read-only in the sandbox
GATE_ENV = "DESKHAND_SHELL_GATE"  # set (to 1) where the sandbox installs the bashrc
VERDICT_TIMEOUT_S = 300.0  # a human may be deciding
MAX_LINE_BYTES = 64 * 1024

SendEvent = Callable[[dict[str, Any]], None]


class ShellGate:
    """Serves the gate port and pairs each command with the host's verdict."""

    def __init__(self, send_event: SendEvent, port: int = GATE_PORT) -> None:
        self._send_event = send_event
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[threading.Event, list[str]]] = {}
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        threading.Thread(target=self._accept, name="shell-gate", daemon=True).start()

    def verdict(self, args: dict[str, Any]) -> None:
        """The host's answer to one command (the ``gate_verdict`` op)."""
        gate, allow, reason = args.get("gate"), args.get("allow"), args.get("reason", "")
        with self._lock:
            pending = self._pending.get(gate) if isinstance(gate, int) else None
        if pending is None or not isinstance(allow, bool):
            raise ValueError("gate_verdict needs a pending gate id and a boolean allow")
        event, answer = pending
        answer.append("allow" if allow else f"deny {reason}".strip())
        event.set()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.closing(connection):
            line = _read_command(connection)
            answer = "deny the command was not readable" if line is None else self._ask(line)
            with contextlib.suppress(OSError):
                connection.sendall(answer.encode("utf-8", "replace") + b"\0")

    def _ask(self, line: str) -> str:
        gate = next(self._ids)
        event, answer = threading.Event(), list[str]()
        with self._lock:
            self._pending[gate] = (event, answer)
        try:
            self._send_event({"id": None, "ok": True, "event": "shell_command", "gate": gate,
                              "line": line})
            if not event.wait(VERDICT_TIMEOUT_S):
                return "deny deskhand did not answer in time"
            return answer[0]
        except OSError:
            return "deny deskhand is not reachable"
        finally:
            with self._lock:
                self._pending.pop(gate, None)


def _read_command(connection: socket.socket) -> str | None:
    connection.settimeout(10.0)
    data = b""
    with contextlib.suppress(OSError):
        while b"\0" not in data and len(data) <= MAX_LINE_BYTES:
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    if b"\0" not in data:
        return None
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")
