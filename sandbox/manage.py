"""Find and remove deskhand's containers (``ls``, ``down``, ``prune``, the start-up reaper),
and tell whether the docker backend can run at all (:func:`docker_ready`).

Every sandbox container carries labels naming its session, when it was made and
the process that owns it (host, pid and the pid's start time, so a recycled pid
does not look alive).  A container whose owner is gone is a stray: the next
sandbox start, or ``deskhand sandbox prune``, removes it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from sandbox.build import DEFAULT_IMAGE
from sandbox.errors import SandboxError, SandboxUnavailable

# How long a removal the engine already has in progress may take before we give up on it.
REMOVAL_WAIT_S = 30.0
LABEL_SESSION = "deskhand.session"
LABEL_OWNER_PID = "deskhand.owner_pid"
LABEL_OWNER_START = "deskhand.owner_start"
LABEL_OWNER_HOST = "deskhand.owner_host"
LABEL_CREATED = "deskhand.created"
LABEL_NETWORK = "deskhand.network"
LABEL_VIEWER = "deskhand.viewer"


def process_start_ticks(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields restart after the last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_labels(pid: int | None = None) -> dict[str, str]:
    """Labels that tie a new container to the calling process."""
    pid = os.getpid() if pid is None else pid
    return {LABEL_OWNER_PID: str(pid), LABEL_OWNER_START: process_start_ticks(pid) or "",
            LABEL_OWNER_HOST: socket.gethostname(), LABEL_CREATED: f"{time.time():.3f}"}


def owner_alive(labels: Mapping[str, str]) -> bool:
    """Whether the process that created a container still runs (unknown hosts count as alive)."""
    if labels.get(LABEL_OWNER_HOST) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    started = process_start_ticks(pid)
    return started is not None and started == labels.get(LABEL_OWNER_START, started)


@dataclass(frozen=True, slots=True)
class SandboxContainer:
    """One deskhand container as ``ls`` shows it."""

    id: str
    name: str
    session: str
    status: str
    owner_pid: str
    owner_alive: bool
    created: float
    network: bool
    viewer: bool

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @classmethod
    def from_container(cls, container: Any) -> SandboxContainer:
        labels: Mapping[str, str] = container.labels
        return cls(id=str(container.id), name=str(container.name),
                   session=labels.get(LABEL_SESSION, ""), status=str(container.status),
                   owner_pid=labels.get(LABEL_OWNER_PID, "?"), owner_alive=owner_alive(labels),
                   created=float(labels.get(LABEL_CREATED, "0") or 0),
                   network=labels.get(LABEL_NETWORK) == "true",
                   viewer=labels.get(LABEL_VIEWER) == "true")


def list_sandboxes(client: docker.DockerClient) -> list[SandboxContainer]:
    """Every container deskhand made, running or not, oldest first."""
    try:
        # Other runs remove their containers meanwhile: one gone between the list and
        # its inspection is not an error (parallel suite workers hit it).
        found = client.containers.list(all=True, filters={"label": LABEL_SESSION},
                                       ignore_removed=True)
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"cannot list containers: {exc}") from exc
    return sorted((SandboxContainer.from_container(c) for c in found), key=lambda s: s.created)


def remove_sandbox(client: docker.DockerClient, container_id: str) -> bool:
    """Kill and remove one container; False when it was already gone (or going).

    Either way the container no longer exists when this returns: a removal the engine
    already had in progress (auto-remove racing us, answered 409) is waited for.
    """
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise SandboxUnavailable(f"cannot remove container {container_id[:12]}: "
                                     f"{exc}") from exc
        _wait_until_removed(client, container_id)
        return False
    return True


def _wait_until_removed(client: docker.DockerClient, container_id: str) -> None:
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while True:
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        if time.monotonic() > deadline:
            raise SandboxUnavailable(f"container {container_id[:12]} is still being removed "
                                     f"after {REMOVAL_WAIT_S:g} s")
        time.sleep(0.05)


def find_sandbox(client: docker.DockerClient, key: str) -> SandboxContainer | None:
    """A container of ours by id prefix, name or session id; SandboxError if several match."""
    found = [s for s in list_sandboxes(client)
             if s.id.startswith(key) or key in {s.name, s.session}]
    if len(found) > 1:
        raise SandboxError(f"{key!r} matches {len(found)} containers: give more of the id")
    return found[0] if found else None


def down(client: docker.DockerClient, key: str | None = None, *,
         everything: bool = False) -> list[SandboxContainer]:
    """Remove one container (``key``) or all of ours (``everything``); return what went."""
    if everything:
        targets = list_sandboxes(client)
    elif key:
        found = find_sandbox(client, key)
        targets = [found] if found is not None else []
    else:
        targets = []
    return [s for s in targets if remove_sandbox(client, s.id)]


def reap_strays(client: docker.DockerClient) -> list[SandboxContainer]:
    """Remove containers whose owner process has died, and ones that already stopped."""
    strays = [s for s in list_sandboxes(client)
              if not s.owner_alive or s.status in {"exited", "dead"}]
    return [s for s in strays if remove_sandbox(client, s.id)]


def docker_ready(client_factory: Callable[[], docker.DockerClient] = docker.from_env, *,
                 image: str = DEFAULT_IMAGE) -> tuple[bool, str]:
    """``(True, "")`` when an engine answers and ``image`` is built; else ``(False, why)``.

    The client the factory makes is closed again: this only looks.
    """
    missing = _missing_engine_socket(os.environ)
    if missing is not None:  # docker-py would leave the failed socket open
        return False, f"no Docker engine answers: no socket at {missing}"
    try:
        client = client_factory()
    except (SandboxError, docker.errors.DockerException) as exc:
        return False, f"no Docker engine answers: {exc}"
    try:
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False, f"image {image} is not built: run `deskhand sandbox build`"
    except docker.errors.DockerException as exc:
        return False, f"no Docker engine answers: {exc}"
    finally:
        client.close()
    return True, ""


def _missing_engine_socket(environ: Mapping[str, str]) -> str | None:
    """The engine's Unix socket when ``DOCKER_HOST`` names one (or is unset) and it is absent."""
    host = environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    return None if Path(path).exists() else path
