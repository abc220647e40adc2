"""Carry the desktop's proxy connections over one ``docker exec`` stream.

Inside the container ``egress_shim.py`` listens on ``127.0.0.1:PROXY_PORT``
and multiplexes every accepted connection onto its stdin/stdout (frames and
flow control: :class:`sandbox.image.egress_shim.Mux`).  Here each new channel
becomes one end of a socket pair whose other end :class:`EgressProxy` serves
like any client socket — so the proxy is tested on plain loopback sockets too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

import docker

from sandbox.docker_exec import ExecStream
from sandbox.errors import SandboxError
from sandbox.image.egress_shim import GO, HELLO, Mux

PROXY_PORT = 3128
SHIM_COMMAND = ("/usr/bin/python3", "/opt/deskhand/egress_shim.py")
READY_TIMEOUT_S = 10.0

log = logging.getLogger("deskhand.sandbox.egress")

Handler = Callable[[socket.socket], None]


def proxy_environment(port: int = PROXY_PORT) -> dict[str, str]:
    """What the desktop's programs are told (both spellings: curl reads lower case)."""
    address = f"http://127.0.0.1:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    environment = {name: address for name in names}
    environment |= {name.lower(): address for name in names}
    loopback = "localhost,127.0.0.1,::1"
    environment |= {"NO_PROXY": loopback, "no_proxy": loopback}
    return environment


class EgressRelay:
    """The shim's exec stream and the threads that serve its channels."""

    def __init__(self, api: docker.APIClient, container_id: str, handler: Handler, *,
                 port: int = PROXY_PORT) -> None:
        self._api = api
        self._container_id = container_id
        self._handler = handler
        self._port = port
        self._stream: ExecStream | None = None
        self._mux: Mux | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the shim and wait until it listens; SandboxError when it does not."""
        stream = ExecStream.start(self._api, self._container_id, (*SHIM_COMMAND, str(self._port)),
                                  on_stderr=lambda line: log.info("egress shim: %s", line))
        self._stream = stream
        self._mux = mux = Mux(_read_exactly(stream), _write_all(stream))
        self._thread = threading.Thread(target=mux.serve, args=(self._open_channel,),
                                        name="egress-relay", daemon=True)
        self._thread.start()
        stream.writer.write(GO)
        if not mux.ready.wait(timeout_s):
            recent = "; ".join(stream.stderr.recent) or "no output"
            self.stop()
            raise SandboxError(f"the egress shim did not start listening ({recent}); an image "
                               "older than the egress proxy lacks it: run `deskhand sandbox "
                               "build`")
        if mux.peer_hello != HELLO:
            self.stop()
            raise SandboxError(f"the image's egress shim speaks {mux.peer_hello!r}, not "
                               f"{HELLO!r}: run `deskhand sandbox build`")

    def open_channels(self) -> int:
        return 0 if self._mux is None else self._mux.open_count()

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _open_channel(self, _number: int) -> socket.socket:
        ours, proxies = socket.socketpair()
        threading.Thread(target=self._serve, args=(proxies,), name="egress-connection",
                         daemon=True).start()
        return ours

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._handler(sock)
        except Exception:  # one broken connection must not stop the relay
            log.exception("egress connection failed")
        finally:
            with contextlib.suppress(OSError):
                sock.close()


def _read_exactly(stream: ExecStream) -> Callable[[int], bytes | None]:
    def read_exactly(size: int) -> bytes | None:
        data = b""
        with contextlib.suppress(OSError, ValueError):
            while len(data) < size:
                chunk = stream.reader.read(size - len(data))
                if not chunk:
                    return None
                data += chunk
            return data
        return None
    return read_exactly


def _write_all(stream: ExecStream) -> Callable[[bytes], None]:
    def write_all(data: bytes) -> None:
        stream.writer.write(data)
    return write_all
