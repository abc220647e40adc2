"""Start, stop, self-check, strays: no container outlives its owner for long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.actions import Screenshot
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.docker_hardening import DockerLimits, RunSpec, hardening_differences
from sandbox.errors import SandboxError, SandboxStateError, SandboxUnavailable
from sandbox.manage import LABEL_SESSION, list_sandboxes, reap_strays, remove_sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]

OWNER_SCRIPT = """
import sys, time
import docker
from sandbox.docker import DockerSandbox, DockerSandboxConfig
sandbox = DockerSandbox(docker.from_env(),
                        DockerSandboxConfig(image=sys.argv[1], reap_strays=False))
sandbox.start()
print(sandbox.container_id, flush=True)
time.sleep(300)
"""


def container_exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


@pytest.fixture
def orphan(desktop_image: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """A running sandbox container whose owning process was killed with SIGKILL."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, desktop_image], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    container_id = owner.stdout.readline().strip()
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    assert container_exists(docker_client, container_id), "the owner never started a container"
    yield container_id
    if container_exists(docker_client, container_id):
        docker_client.api.remove_container(container_id, force=True)


def test_prune_removes_a_killed_owners_container(docker_client: docker.DockerClient,
                                                 orphan: str) -> None:
    listed = {s.id: s for s in list_sandboxes(docker_client)}
    assert not listed[orphan].owner_alive
    removed = reap_strays(docker_client)
    assert orphan in {s.id for s in removed}
    assert not container_exists(docker_client, orphan)


def test_next_start_removes_a_killed_owners_container(docker_client: docker.DockerClient,
                                                      desktop_image: str, orphan: str) -> None:
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)):
        assert not container_exists(docker_client, orphan)


def test_stop_removes_the_container_and_live_owners_are_left_alone(
        docker_client: docker.DockerClient, desktop_image: str) -> None:
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as sandbox:
        container_id = sandbox.container_id
        assert container_id not in {s.id for s in reap_strays(docker_client)}
        labels = docker_client.containers.get(container_id).labels
        assert labels[LABEL_SESSION] == sandbox.session
        assert labels["deskhand.owner_pid"] == str(os.getpid())
        assert float(labels["deskhand.created"]) > 0
    assert not container_exists(docker_client, container_id)


def test_use_outside_running_state_is_refused(docker_client: docker.DockerClient,
                                              desktop_image: str) -> None:
    sandbox = DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image))
    with pytest.raises(SandboxStateError):
        sandbox.screenshot()
    with sandbox:
        with pytest.raises(SandboxStateError):
            sandbox.start()
        assert sandbox.execute(Screenshot()).frame.height == sandbox.size.height
    with pytest.raises(SandboxStateError):
        sandbox.check(["true"])
    sandbox.stop()  # a second stop is harmless


def test_missing_image_names_the_fix(docker_client: docker.DockerClient) -> None:
    config = DockerSandboxConfig(image="deskhand/does-not-exist:never")
    with pytest.raises(SandboxUnavailable, match="deskhand sandbox build"):
        DockerSandbox(docker_client, config).start()


# --- the self-check -----------------------------------------------------------------------------

def test_self_check_refuses_a_container_that_differs_from_the_spec(
        desktop: DockerSandbox) -> None:
    stricter = RunSpec(image="x", name="x", labels={}, environment={},
                       limits=DockerLimits(pids=7, memory_mb=64), network=True)
    with pytest.raises(SandboxError) as refused:
        desktop.verify_hardening(stricter)
    message = str(refused.value)
    for field in ("HostConfig.PidsLimit", "HostConfig.Memory", "HostConfig.MemorySwap",
                  "HostConfig.NetworkMode"):
        assert field in message


def test_self_check_lists_every_weakness_of_a_plain_container(
        docker_client: docker.DockerClient, desktop_image: str) -> None:
    plain = docker_client.containers.create(desktop_image, command=["true"], user="0",
                                            network_mode="host", pid_mode="host",
                                            cap_add=["SYS_ADMIN"],
                                            volumes={"/var/run/docker.sock":
                                                     {"bind": "/var/run/docker.sock"}})
    try:
        attrs = docker_client.api.inspect_container(plain.id)
    finally:
        plain.remove(force=True)
    spec = RunSpec(image=desktop_image, name="x", labels={}, environment={})
    problems = "\n".join(hardening_differences(attrs, spec))
    for field in ("Config.User", "CapDrop", "CapAdd", "SecurityOpt", "ReadonlyRootfs",
                  "NetworkMode", "PidMode", "Binds", "Mounts", "PidsLimit", "Memory"):
        assert field in problems


def test_full_network_only_when_asked_and_recorded(docker_client: docker.DockerClient,
                                                   desktop_image: str) -> None:
    config = DockerSandboxConfig(image=desktop_image)
    with DockerSandbox(docker_client, config, network=True) as sandbox:
        interfaces = sandbox.check(["ls", "/sys/class/net"]).stdout.split()
        attrs = docker_client.api.inspect_container(sandbox.container_id)
        assert sandbox.network is True
        assert attrs["HostConfig"]["NetworkMode"] == "bridge"
        assert attrs["Config"]["Labels"]["deskhand.network"] == "true"
    assert "eth0" in interfaces


def test_default_network_is_none(desktop: DockerSandbox,
                                 docker_client: docker.DockerClient) -> None:
    attrs = docker_client.api.inspect_container(desktop.container_id)
    assert desktop.network is False
    assert attrs["HostConfig"]["NetworkMode"] == "none"


def test_a_container_the_engine_is_already_removing_is_gone_once_removal_returns(
        docker_client: docker.DockerClient, desktop_image: str) -> None:
    # Killing an auto-remove container starts the engine's own removal; ours then meets
    # it (409, "already in progress") or finds it done. Either way, when remove_sandbox
    # returns the container must not exist: callers report "removed" right after.
    for _ in range(5):
        container = docker_client.containers.run(desktop_image, entrypoint=["sleep", "60"],
                                                 auto_remove=True, detach=True,
                                                 network_mode="none")
        docker_client.api.kill(container.id)
        remove_sandbox(docker_client, container.id)
        assert not container_exists(docker_client, container.id)
