"""The image's PID 1: the container ends, non-zero, as soon as any desktop service dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from sandbox.docker_hardening import RunSpec

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

Container = Any  # docker.models.containers.Container; the SDK ships no types
MakeContainer = Callable[..., Container]


@pytest.fixture
def make_container(docker_client: docker.DockerClient,
                   desktop_image: str) -> Iterator[MakeContainer]:
    """Factory of hardened desktop containers that stay around after exit, to read their status."""
    made: list[Container] = []

    def make(vnc: str = "off") -> Container:
        environment = {"DESKHAND_VNC": vnc, "DISPLAY": ":0"}
        if vnc != "off":
            environment["DESKHAND_VNC_PASSWORD"] = "pw123456"
        spec = RunSpec(image=desktop_image, name=f"deskhand-entrypoint-test-{len(made)}",
                       labels={}, environment=environment)
        container = docker_client.containers.create(**{**spec.create_kwargs(),
                                                       "auto_remove": False, "name": None})
        made.append(container)
        container.start()
        wait_until_ready(container)
        return container

    yield make
    for container in made:
        container.remove(force=True)


def wait_until_ready(container: Container) -> None:
    result = container.exec_run(["sh", "-c", "for i in $(seq 300); do "
                                 "test -e /tmp/deskhand/ready && exit 0; sleep 0.05; done; exit 1"])
    assert result.exit_code == 0, container.logs().decode()


@pytest.mark.parametrize(("service", "vnc"), [("Xvfb", "off"), ("openbox", "off"),
                                             ("x11vnc", "view"), ("dbus-daemon", "off")])
def test_container_exits_non_zero_when_a_service_dies(make_container: MakeContainer,
                                                      service: str, vnc: str) -> None:
    container = make_container(vnc)
    container.exec_run(["pkill", "-KILL", "-x", service])
    status = container.wait(timeout=30)["StatusCode"]
    logs = container.logs().decode()
    assert status == 1
    # Whichever service PID 1 reaps first is named (openbox dies too when Xvfb goes).
    assert "exited" in logs
    assert "stopping the desktop" in logs


def test_container_stops_cleanly_on_sigterm(make_container: MakeContainer) -> None:
    container = make_container()
    container.stop(timeout=10)
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert "stopping on SIGTERM" in container.logs().decode()


def test_the_session_bus_listens_where_every_process_looks_for_it(
        make_container: MakeContainer) -> None:
    container = make_container()
    address = container.exec_run(["sh", "-c", "echo $DBUS_SESSION_BUS_ADDRESS"]).output.decode()
    assert address.strip() == "unix:path=/tmp/runtime-desk/bus"
    listed = container.exec_run(["dbus-send", "--session", "--print-reply",
                                 "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus.ListActivatableNames"])
    assert listed.exit_code == 0, listed.output.decode()
    assert "org.a11y.Bus" in listed.output.decode(), "the AT-SPI bus starts on demand"
    assert "session bus" in container.logs().decode()
