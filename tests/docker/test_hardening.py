"""Each hardening property, observed from inside a live sandbox container."""

from __future__ import annotations

import io
from collections.abc import Iterator

import docker
import pytest

from sandbox.docker import DockerSandbox, DockerSandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def proc_status(sandbox: DockerSandbox, pid: str = "self") -> dict[str, str]:
    result = sandbox.check(["cat", f"/proc/{pid}/status"])
    assert result.exit_code == 0, result.stderr
    pairs = (line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


@pytest.mark.parametrize("pid", ["self", "1"])
def test_processes_run_as_uid_1000_not_root(desktop: DockerSandbox, pid: str) -> None:
    status = proc_status(desktop, pid)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4


@pytest.mark.parametrize("pid", ["self", "1"])
def test_every_capability_is_gone(desktop: DockerSandbox, pid: str) -> None:
    status = proc_status(desktop, pid)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, f"{field} = {status[field]}"


@pytest.mark.parametrize("pid", ["self", "1"])
def test_no_new_privileges_and_seccomp_are_on(desktop: DockerSandbox, pid: str) -> None:
    status = proc_status(desktop, pid)
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # filter mode: docker's default profile is kept


def test_core_dumps_are_off(desktop: DockerSandbox) -> None:
    limits = desktop.check(["cat", "/proc/self/limits"]).stdout.splitlines()
    core = next(line for line in limits if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_image_has_no_sudo_and_no_setuid_files(desktop: DockerSandbox) -> None:
    assert desktop.check(["sh", "-c", "command -v sudo"]).exit_code != 0
    found = desktop.check(["find", "/", "-xdev", "-type", "f", "-perm", "/6000"])
    assert found.stdout.strip() == ""


@pytest.mark.parametrize("path", ["/probe", "/etc/probe", "/usr/bin/probe", "/opt/deskhand/probe"])
def test_root_filesystem_is_read_only(desktop: DockerSandbox, path: str) -> None:
    result = desktop.check(["touch", path])
    assert result.exit_code != 0
    assert "Read-only file system" in result.stderr


def test_scratch_space_is_capped_and_not_executable(desktop: DockerSandbox) -> None:
    mounts = desktop.check(["cat", "/proc/self/mounts"]).stdout.splitlines()
    tmpfs = {line.split()[1]: line.split()[3] for line in mounts if line.split()[2] == "tmpfs"}
    for target in ("/tmp", "/home/desk"):
        assert {"nosuid", "nodev", "noexec"} <= set(tmpfs[target].split(","))
        assert "size=" in tmpfs[target]
    copied = desktop.check(["sh", "-c", "cp /bin/true /tmp/t && chmod +x /tmp/t && /tmp/t"])
    assert copied.exit_code != 0
    assert "Permission denied" in copied.stderr


def test_no_docker_socket_anywhere(desktop: DockerSandbox) -> None:
    assert desktop.check(["ls", "/var/run/docker.sock", "/run/docker.sock"]).exit_code != 0
    sockets = desktop.check(["find", "/", "-xdev", "-type", "s"]).stdout
    mounts = desktop.check(["cat", "/proc/self/mountinfo"]).stdout
    assert "docker.sock" not in sockets
    assert "docker.sock" not in mounts


# --- a setuid binary gains nothing --------------------------------------------------------------

PROBE_DOCKERFILE = """
FROM {image}
USER root
RUN cp /usr/bin/id /usr/local/bin/setuid-id && chmod 4755 /usr/local/bin/setuid-id
USER 1000:1000
"""


@pytest.fixture(scope="module")
def setuid_probe(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[str]:
    """The desktop image plus a setuid-root copy of ``id`` (test only, never shipped)."""
    tag = "deskhand/desktop-setuid-probe:test"
    dockerfile = io.BytesIO(PROBE_DOCKERFILE.format(image=desktop_image).encode())
    docker_client.images.build(fileobj=dockerfile, tag=tag, rm=True, forcerm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_setuid_root_binary_runs_without_root(docker_client: docker.DockerClient,
                                              setuid_probe: str) -> None:
    config = DockerSandboxConfig(image=setuid_probe)
    with DockerSandbox(docker_client, config) as sandbox:
        mode = sandbox.check(["stat", "-c", "%a %U", "/usr/local/bin/setuid-id"])
        ran = sandbox.check(["/usr/local/bin/setuid-id"])
    assert mode.stdout.split() == ["4755", "root"]  # the bit is really there...
    assert ran.exit_code == 0
    assert ran.stdout.startswith("uid=1000(desk)")
    assert "euid=0" not in ran.stdout  # ...and no-new-privileges makes the kernel ignore it
