"""Watching over VNC: loopback only, a fresh password, view-only by default, no network."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import docker
import pytest

from sandbox.docker import DockerSandbox, DockerSandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

VNC_AUTH = 2
KEYSYMS_CTRL_ALT_T = (0xFFE3, 0xFFE9, ord("t"))


def des_response(password: str, challenge: bytes) -> bytes:
    """RFB's VNC authentication: DES-ECB of the challenge, key = password with each byte's
    bits reversed.  openssl does the DES so the test needs no extra package."""
    key = bytes(int(f"{byte:08b}"[::-1], 2) for byte in password.encode()[:8].ljust(8, b"\0"))
    result = subprocess.run(["openssl", "enc", "-des-ecb", "-provider", "legacy", "-provider",
                             "default", "-K", key.hex(), "-nopad"], input=challenge,
                            capture_output=True, check=True)
    return result.stdout


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def offered_security(sock: socket.socket) -> list[int]:
    assert read_exactly(sock, 12) == b"RFB 003.008\n"
    sock.sendall(b"RFB 003.008\n")
    count = read_exactly(sock, 1)[0]
    return list(read_exactly(sock, count))


def authenticate(sock: socket.socket, password: str) -> int:
    """Run VNC authentication; return the server's SecurityResult (0 = accepted)."""
    assert offered_security(sock) == [VNC_AUTH]
    sock.sendall(bytes([VNC_AUTH]))
    sock.sendall(des_response(password, read_exactly(sock, 16)))
    result: int = struct.unpack(">I", read_exactly(sock, 4))[0]
    return result


def open_session(port: int, password: str) -> tuple[socket.socket, int, int]:
    """Authenticate, send ClientInit (shared), read ServerInit; return socket and its size."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert authenticate(sock, password) == 0
    sock.sendall(b"\x01")
    width, height = struct.unpack(">HH", read_exactly(sock, 4))
    read_exactly(sock, 16)  # pixel format
    read_exactly(sock, struct.unpack(">I", read_exactly(sock, 4))[0])  # desktop name
    return sock, width, height


def press_ctrl_alt_t(sock: socket.socket) -> None:
    for down in (1, 0):
        for keysym in KEYSYMS_CTRL_ALT_T:
            sock.sendall(struct.pack(">BBxxI", 4, down, keysym))  # KeyEvent


def xterm_running(sandbox: DockerSandbox) -> bool:
    return sandbox.check(["pgrep", "-x", "xterm"]).exit_code == 0


@pytest.fixture(scope="module")
def watched(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[DockerSandbox]:
    config = DockerSandboxConfig(image=desktop_image, vnc=True)
    with DockerSandbox(docker_client, config) as sandbox:
        yield sandbox


def test_viewer_is_loopback_with_a_fresh_password(watched: DockerSandbox,
                                                  bridge_address: str) -> None:
    viewer = watched.viewer
    assert viewer is not None
    assert viewer.host == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((bridge_address, viewer.port), timeout=2)
    assert viewer.view_only is True
    assert len(viewer.password) == 8  # all that RFB authentication uses
    assert viewer.password.isalnum()


def test_viewer_keeps_the_container_off_every_network(watched: DockerSandbox,
                                                      docker_client: docker.DockerClient) -> None:
    attrs = docker_client.api.inspect_container(watched.container_id)
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert attrs["HostConfig"]["PortBindings"] in (None, {})
    assert watched.check(["ls", "/sys/class/net"]).stdout.split() == ["lo"]


def test_password_does_not_linger_in_the_container(watched: DockerSandbox) -> None:
    assert watched.viewer is not None
    environ = watched.check(["cat", "/proc/1/environ"]).stdout
    files = watched.check(["ls", "-a", "/tmp/deskhand"]).stdout.split()
    assert watched.viewer.password not in environ
    assert "vnc-passwd" not in files


def test_only_password_authentication_is_offered(watched: DockerSandbox) -> None:
    assert watched.viewer is not None
    with socket.create_connection(("127.0.0.1", watched.viewer.port), timeout=10) as sock:
        assert authenticate(sock, "wrong-pw") != 0


def test_right_password_shows_the_desktop(watched: DockerSandbox) -> None:
    assert watched.viewer is not None
    sock, width, height = open_session(watched.viewer.port, watched.viewer.password)
    sock.close()
    assert (width, height) == (watched.size.width, watched.size.height)


def test_view_only_viewer_cannot_type(watched: DockerSandbox) -> None:
    assert watched.viewer is not None
    sock, _, _ = open_session(watched.viewer.port, watched.viewer.password)
    with sock:
        press_ctrl_alt_t(sock)
        time.sleep(2.0)  # long enough for xterm to start, had the keys gone through
        assert not xterm_running(watched)


def test_write_viewer_can_type(docker_client: docker.DockerClient, desktop_image: str) -> None:
    config = DockerSandboxConfig(image=desktop_image, vnc=True, vnc_write=True)
    with DockerSandbox(docker_client, config) as sandbox:
        assert sandbox.viewer is not None
        assert sandbox.viewer.view_only is False
        sock, _, _ = open_session(sandbox.viewer.port, sandbox.viewer.password)
        with sock:
            press_ctrl_alt_t(sock)
            deadline = time.monotonic() + 10
            while not xterm_running(sandbox):
                assert time.monotonic() < deadline, "the viewer's keys never reached the desktop"
                time.sleep(0.1)
