"""A running deskhand desktop, looked at from another process (``deskhand perceive
elements live``).

``deskhand sandbox up`` or a run owns the container and its executor; this
opens a second executor in it, only to take screenshots and read the
accessibility tree.  It serves no shell gate (the owner's executor does) and
closing it ends that executor alone: the container stays as it was.

    with AttachedDesktop(client) as desktop:      # the one desktop that runs
        tree = desktop.elements()
"""

from __future__ import annotations

import docker

from sandbox.base import Size
from sandbox.channel import FAST, ExecutorChannel
from sandbox.docker import EXECUTOR_COMMAND
from sandbox.docker_exec import ExecStream
from sandbox.errors import SandboxError, SandboxUnavailable
from sandbox.executor_backed import ExecutorSandbox
from sandbox.manage import SandboxContainer, find_sandbox, list_sandboxes

HELLO_DEADLINE_S = 15.0
# The owner's executor serves the desktop shells' gate port; a second one must not try.
NO_SHELL_GATE = {"DESKHAND_SHELL_GATE": ""}


class AttachedDesktop(ExecutorSandbox):
    """A second executor in a running deskhand container (see the module docstring)."""

    kind = "docker"

    def __init__(self, client: docker.DockerClient, key: str | None = None) -> None:
        """``key``: a container id prefix, name or session (``deskhand sandbox ls``); none:
        the one desktop that runs."""
        super().__init__(size=Size(1, 1), settle_defaults=FAST)
        self._client = client
        self._key = key
        self._executor: ExecStream | None = None
        self.container: SandboxContainer | None = None

    def _open(self) -> None:
        self.container = running_desktop(self._client, self._key)
        self._executor = ExecStream.start(self._client.api, self.container.id, EXECUTOR_COMMAND,
                                          environment=NO_SHELL_GATE)
        self._channel = ExecutorChannel(self._executor.reader, self._executor.writer)
        hello = self._call("hello", {}, HELLO_DEADLINE_S).result
        self._size = Size(int(hello["width"]), int(hello["height"]))

    def _teardown(self) -> None:
        self._close_channel()
        if self._executor is not None:
            self._executor.close()
            self._executor = None


def running_desktop(client: docker.DockerClient, key: str | None) -> SandboxContainer:
    """The running container ``key`` names, or the only one that runs; SandboxError saying
    what to do when there is none, or several and no key."""
    if key:
        found = find_sandbox(client, key)
        if found is None:
            raise SandboxError(f"no deskhand container matches {key!r} (see `deskhand "
                               "sandbox ls`)")
        if found.status != "running":
            raise SandboxError(f"container {found.short_id} is {found.status}, not running")
        return found
    running = [s for s in list_sandboxes(client) if s.status == "running"]
    if not running:
        raise SandboxUnavailable("no deskhand desktop is running: start one with "
                                 "`deskhand sandbox up`")
    if len(running) > 1:
        raise SandboxError(f"{len(running)} desktops are running "
                           f"({', '.join(s.short_id for s in running)}): name one with --sandbox")
    return running[0]
