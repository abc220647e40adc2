"""The sandbox cannot reach the network, the host's X display, or be reached through them."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sandbox.docker import DockerSandbox, DockerSandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

# RFC 5737 documentation address: nobody's server; with no route nothing is ever sent.
PUBLIC_ADDRESS = "192.0.2.1"

CONNECT_PROBE = """
import errno, json, socket, sys
family, address = sys.argv[1], sys.argv[2]
if family == "tcp":
    host, port = address.rsplit(":", 1)
    sock, target = socket.socket(socket.AF_INET), (host, int(port))
else:
    sock, target = socket.socket(socket.AF_UNIX), address.replace("@", "\\0", 1)
sock.settimeout(3)
try:
    sock.connect(target)
    print(json.dumps({"connected": True}))
except OSError as exc:
    print(json.dumps({"connected": False, "errno": exc.errno and errno.errorcode[exc.errno]}))
"""


def connect_from(sandbox: DockerSandbox, family: str, address: str) -> dict[str, object]:
    result = sandbox.check(["python3", "-c", CONNECT_PROBE, family, address])
    assert result.exit_code == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


@pytest.fixture(scope="module")
def gateway_listener(bridge_address: str) -> Iterator[tuple[str, int]]:
    """A TCP listener on the host's docker bridge address: reachable from any bridged container."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((bridge_address, 0))
        listener.listen(1)
        yield bridge_address, listener.getsockname()[1]


def test_only_loopback_exists(desktop: DockerSandbox) -> None:
    assert desktop.check(["ls", "/sys/class/net"]).stdout.split() == ["lo"]


def test_host_gateway_is_unreachable(desktop: DockerSandbox,
                                     gateway_listener: tuple[str, int]) -> None:
    host, port = gateway_listener
    with socket.create_connection((host, port), timeout=2):
        pass  # control: the service really listens on the bridge address
    outcome = connect_from(desktop, "tcp", f"{host}:{port}")
    assert outcome == {"connected": False, "errno": "ENETUNREACH"}


def test_public_address_is_unreachable(desktop: DockerSandbox) -> None:
    outcome = connect_from(desktop, "tcp", f"{PUBLIC_ADDRESS}:443")
    assert outcome == {"connected": False, "errno": "ENETUNREACH"}


def test_name_resolution_has_nowhere_to_go(desktop: DockerSandbox) -> None:
    result = desktop.check(["python3", "-c", "import socket; socket.getaddrinfo('pypi.org', 443)"])
    assert result.exit_code != 0
    assert "gaierror" in result.stderr


# --- X displays ---------------------------------------------------------------------------------

def free_display_number() -> int:
    """A display number no X server on this host uses (socket file or abstract socket)."""
    for number in range(420, 600):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        if not abstract_x_socket_answers(number):
            return number
    raise RuntimeError("no free X display number")


def abstract_x_socket_answers(number: int) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(f"\0/tmp/.X11-unix/X{number}")
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def host_display() -> Iterator[int]:
    """An Xvfb on the host, listening the usual ways (socket file and abstract socket)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed on the host")
    number = free_display_number()
    server = subprocess.Popen(["Xvfb", f":{number}", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not abstract_x_socket_answers(number):
            assert time.monotonic() < deadline, "host Xvfb did not start"
            time.sleep(0.02)
        yield number
    finally:
        server.terminate()
        server.wait(timeout=5)


def test_host_display_is_unreachable_from_the_sandbox(desktop: DockerSandbox,
                                                      host_display: int) -> None:
    assert abstract_x_socket_answers(host_display)  # control: it answers on the host
    abstract = connect_from(desktop, "unix", f"@/tmp/.X11-unix/X{host_display}")
    socket_file = connect_from(desktop, "unix", f"/tmp/.X11-unix/X{host_display}")
    tcp = connect_from(desktop, "tcp", f"127.0.0.1:{6000 + host_display}")
    assert abstract == {"connected": False, "errno": "ECONNREFUSED"}
    assert socket_file == {"connected": False, "errno": "ENOENT"}
    assert tcp == {"connected": False, "errno": "ECONNREFUSED"}


def test_sandbox_display_is_unreachable_from_the_host(docker_client: docker.DockerClient,
                                                      desktop_image: str) -> None:
    number = free_display_number()
    config = DockerSandboxConfig(image=desktop_image, display_number=number)
    with DockerSandbox(docker_client, config) as sandbox:
        inside = connect_from(sandbox, "unix", f"@/tmp/.X11-unix/X{number}")
        listening = sandbox.check(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).stdout
        assert sandbox.screenshot().width == sandbox.size.width
        assert not abstract_x_socket_answers(number)
        assert not Path(f"/tmp/.X11-unix/X{number}").exists()
        with pytest.raises(ConnectionRefusedError) as refused:
            socket.create_connection(("127.0.0.1", 6000 + number), timeout=2)
    assert inside == {"connected": True}  # control: the display exists, inside
    assert f":{6000 + number:04X}" not in listening  # and Xvfb has no TCP listener at all
    assert refused.value.errno == errno.ECONNREFUSED
