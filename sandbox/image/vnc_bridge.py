"""Carry one VNC connection between stdin/stdout and x11vnc on the container's loopback.

The container has no network, so a host-side viewer reaches x11vnc only through
``docker exec`` of this script: the host relays the viewer's bytes to our stdin
and our stdout back.  Standard library only; exits when either side closes.

The host first sends one byte, GO, once it is reading our stdout: x11vnc
speaks first, and its greeting must not reach docker's stream before the host's
HTTP client has finished with the upgrade response (it would be swallowed there).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading

CHUNK = 65536
GO = b"\x00"


def copy_stdin_to(connection: socket.socket) -> None:
    """Forward the viewer's bytes; on EOF tell x11vnc nothing more is coming."""
    with contextlib.suppress(OSError):
        while chunk := os.read(0, CHUNK):
            connection.sendall(chunk)
        connection.shutdown(socket.SHUT_WR)


def copy_to_stdout(connection: socket.socket) -> None:
    while chunk := connection.recv(CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(1, view):]


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 5900
    if os.read(0, 1) != GO:
        return 1  # the host went away before it was ready
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as exc:
        print(f"vnc_bridge: cannot reach x11vnc on port {port}: {exc}", file=sys.stderr)
        return 1
    connection.settimeout(None)
    threading.Thread(target=copy_stdin_to, args=(connection,), daemon=True).start()
    with contextlib.suppress(OSError):  # the viewer went away: nothing left to carry
        copy_to_stdout(connection)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
