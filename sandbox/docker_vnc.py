"""Watch a network-less container over VNC: a loopback relay through ``docker exec``.

Why a relay and not a published port: publishing needs the container on a
Docker network, and on any bridge network (even ``internal=True``) the
container can reach the host's gateway address and whatever listens there.
Here the container keeps network ``none``; x11vnc listens on the container's
own loopback; the host listens on ``127.0.0.1`` only, and every viewer
connection becomes one ``docker exec`` of ``vnc_bridge.py`` whose stdin and
stdout carry the RFB bytes.  VNC's own password (fresh per session, view-only
unless asked) still guards the loopback port against other local users.

    viewer ──tcp 127.0.0.1:PORT──▶ VncRelay ──exec socket──▶ vnc_bridge.py ──lo:5900──▶ x11vnc
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import socket
import string
import threading

import docker

from sandbox.docker_exec import ExecStream
from sandbox.errors import SandboxError, SandboxUnavailable

BRIDGE_COMMAND = ("/usr/bin/python3", "/opt/deskhand/vnc_bridge.py")
BRIDGE_GO = b"\x00"  # vnc_bridge.py waits for it: see its docstring
LOOPBACK = "127.0.0.1"
PORT_SEARCH_SPAN = 100
_CHUNK = 65536

log = logging.getLogger("deskhand.sandbox.vnc")


def new_vnc_password() -> str:
    """Eight random letters and digits: RFB authentication only uses the first eight."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def listen_on_loopback(preferred_port: int) -> socket.socket:
    """A listening socket on 127.0.0.1: ``preferred_port`` or the next free one (0: any)."""
    ports = [0] if preferred_port == 0 else range(preferred_port, preferred_port + PORT_SEARCH_SPAN)
    for port in ports:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((LOOPBACK, port))
        except OSError as exc:
            listener.close()
            if exc.errno != errno.EADDRINUSE:
                raise SandboxUnavailable(f"cannot listen on {LOOPBACK}:{port}: {exc}") from exc
            continue
        listener.listen(8)
        return listener
    raise SandboxUnavailable(f"no free port on {LOOPBACK} from {preferred_port}")


class VncRelay:
    """Accepts viewers on the host's loopback and carries each one into the container."""

    def __init__(self, api: docker.APIClient, container_id: str, *, port: int = 0) -> None:
        self._api = api
        self._container_id = container_id
        self._listener = listen_on_loopback(port)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_viewers, name="vnc-relay",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and cut every viewer."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for connection in list(self._open):
                _shut(connection)
        self._thread.join(timeout=2)

    def _accept_viewers(self) -> None:
        while not self._stopped.is_set():
            try:
                viewer, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(viewer,), name="vnc-viewer",
                             daemon=True).start()

    def _serve(self, viewer: socket.socket) -> None:
        try:
            bridge = ExecStream.start(self._api, self._container_id, BRIDGE_COMMAND,
                                      on_stderr=lambda line: log.info("vnc bridge: %s", line))
        except SandboxError as exc:
            log.warning("cannot relay a VNC viewer: %s", exc)
            viewer.close()
            return
        with self._lock:
            self._open.add(viewer)
        with contextlib.suppress(OSError):  # a dead bridge shows up as end of stream below
            bridge.writer.write(BRIDGE_GO)
        upstream = threading.Thread(target=_viewer_to_bridge, args=(viewer, bridge), daemon=True)
        upstream.start()
        _bridge_to_viewer(bridge, viewer)
        upstream.join(timeout=2)
        bridge.close()
        with self._lock:
            self._open.discard(viewer)
        viewer.close()


def _viewer_to_bridge(viewer: socket.socket, bridge: ExecStream) -> None:
    with contextlib.suppress(OSError):
        while chunk := viewer.recv(_CHUNK):
            bridge.writer.write(chunk)
    bridge.close_stdin()


def _bridge_to_viewer(bridge: ExecStream, viewer: socket.socket) -> None:
    with contextlib.suppress(OSError, ValueError):
        while chunk := bridge.reader.read1(_CHUNK):
            viewer.sendall(chunk)
    _shut(viewer)


def _shut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
