"""The docker backend: an ephemeral, hardened desktop container per sandbox.

    with DockerSandbox(docker.from_env(), DockerSandboxConfig(vnc=True)) as sandbox:
        frame = sandbox.screenshot()
        sandbox.execute(TypeText(text="héllo"))

Start-up, in order: remove stray containers whose owner died; run the image
with the hardening of :class:`~sandbox.docker_hardening.RunSpec` (network
``none`` unless ``network=True``); inspect the running container and refuse to
go on if any hardening field differs; start the one long-lived executor
through ``docker exec`` and say hello over its channel; when a viewer is
wanted, open the loopback VNC relay (:mod:`sandbox.docker_vnc`).

``stop`` removes the container; the container also removes itself when its
desktop dies.  If this process dies without stopping, the container is a stray
that the next start (or ``deskhand sandbox prune``) removes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from sandbox.base import Size, Viewer
from sandbox.build import DEFAULT_IMAGE
from sandbox.channel import (
    FAST,
    ExecutorChannel,
    SettleDefaults,
)
from sandbox.docker_exec import ExecStream
from sandbox.docker_hardening import DockerLimits, RunSpec, hardening_differences
from sandbox.docker_vnc import VncRelay, new_vnc_password
from sandbox.egress.relay import EgressRelay, proxy_environment
from sandbox.errors import SandboxCrashed, SandboxError, SandboxUnavailable
from sandbox.executor_backed import ExecutorSandbox
from sandbox.manage import (
    LABEL_NETWORK,
    LABEL_SESSION,
    LABEL_VIEWER,
    owner_labels,
    reap_strays,
    remove_sandbox,
)

EXECUTOR_COMMAND = ("/opt/deskhand/venv/bin/python", "/opt/deskhand/entrypoint.py", "run-executor")
SCREENSHOT_DEADLINE_S = 10.0
CHECK_GRACE_S = 5.0

log = logging.getLogger("deskhand.sandbox.docker")


@dataclass(frozen=True, kw_only=True)
class DockerSandboxConfig:
    """What one docker sandbox should be; the defaults are the locked-down ones."""

    image: str = DEFAULT_IMAGE
    size: Size = Size(1280, 800)
    network: bool = False
    vnc: bool = False
    vnc_write: bool = False
    vnc_port: int = 0
    limits: DockerLimits = field(default_factory=DockerLimits)
    display_number: int = 0
    start_timeout_s: float = 30.0
    reap_strays: bool = True
    session: str = ""  # labels the container; a random id when empty
    settle: SettleDefaults = FAST
    # Serves each proxy connection of the desktop (an EgressProxy's ``handle``): with it,
    # the desktop stays on network none and reaches hosts only through that proxy.
    egress: Callable[[socket.socket], None] | None = None


class DockerSandbox(ExecutorSandbox):
    """A :class:`~sandbox.base.Sandbox` in a throw-away container; see the module docstring."""

    kind = "docker"

    def __init__(self, client: docker.DockerClient, config: DockerSandboxConfig | None = None,
                 *, size: Size | None = None, network: bool | None = None,
                 vnc: bool | None = None) -> None:
        """``size``, ``network`` and ``vnc``, when given, override those fields of ``config``."""
        self._client = client
        base = config or DockerSandboxConfig()
        self._config = dataclasses.replace(
            base, size=base.size if size is None else size,
            network=base.network if network is None else network,
            vnc=base.vnc if vnc is None else vnc)
        super().__init__(size=self._config.size, settle_defaults=self._config.settle)
        self._name = f"deskhand-{uuid.uuid4().hex[:12]}"
        self.session = self._config.session or self._name.removeprefix("deskhand-")
        self._container_id = ""
        self._executor: ExecStream | None = None
        self._relay: VncRelay | None = None
        self._egress: EgressRelay | None = None
        self._viewer: Viewer | None = None
        self._logs: deque[str] = deque(maxlen=50)
        self._log_stream: Any = None

    # --- what the session records ---------------------------------------------------------------

    @property
    def viewer(self) -> Viewer | None:
        return self._viewer

    @property
    def network(self) -> bool:
        """Whether this desktop may reach any network (recorded with the session)."""
        return self._config.network

    @property
    def egress_mode(self) -> str:
        """``off`` (no network), ``allowlist`` (only through the proxy) or ``full``."""
        if self._config.network:
            return "full"
        return "allowlist" if self._config.egress is not None else "off"

    @property
    def container_id(self) -> str:
        return self._container_id

    # --- lifecycle --------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._config.reap_strays:
            for stray in reap_strays(self._client):
                log.info("removed stray container %s of dead owner %s", stray.short_id,
                         stray.owner_pid)
        password = new_vnc_password() if self._config.vnc else None
        spec = self._run_spec(password)
        self._run_container(spec)
        self._follow_logs()
        self.verify_hardening(spec)
        self._start_executor()
        self._start_egress()
        if password is not None:
            self._open_viewer(password)

    def _run_spec(self, password: str | None) -> RunSpec:
        config = self._config
        environment = {"DISPLAY": f":{config.display_number}", "DESKHAND_SCREEN": str(config.size),
                       "DESKHAND_READY_TIMEOUT_S": f"{config.start_timeout_s:g}",
                       "DESKHAND_VNC": "off"}
        if password is not None:
            environment["DESKHAND_VNC"] = "write" if config.vnc_write else "view"
            environment["DESKHAND_VNC_PASSWORD"] = password
        if config.egress is not None:
            environment |= proxy_environment()
        labels = {LABEL_SESSION: self.session, LABEL_NETWORK: str(config.network).lower(),
                  LABEL_VIEWER: str(config.vnc).lower(), **owner_labels()}
        return RunSpec(image=config.image, name=self._name, labels=labels,
                       environment=environment, network=config.network, limits=config.limits)

    def _run_container(self, spec: RunSpec) -> None:
        """Create and start the container (never pulling: only our own image will do)."""
        try:
            container = self._client.containers.create(**spec.create_kwargs())
            self._container_id = str(container.id)
            container.start()
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(
                f"image {spec.image} is missing: run `deskhand sandbox build`") from exc
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(f"cannot start the sandbox container: {exc}") from exc

    def _follow_logs(self) -> None:
        """Keep the container's last log lines: after auto-removal nothing else has them."""
        threading.Thread(target=self._collect_logs, name="docker-logs", daemon=True).start()

    def _collect_logs(self) -> None:
        with contextlib.suppress(Exception):  # diagnostics only; the stream ends at removal
            self._log_stream = stream = self._client.api.logs(self._container_id, stream=True,
                                                              follow=True)
            for chunk in stream:
                for line in bytes(chunk).decode("utf-8", "replace").splitlines():
                    self._logs.append(line)
                    log.debug("container %s: %s", self.session, line)

    def verify_hardening(self, spec: RunSpec) -> None:
        """Inspect the running container; SandboxError naming every field that is not as asked."""
        differences = hardening_differences(self._inspect(), spec)
        if differences:
            raise SandboxError("the container is not hardened as asked; refusing to use it:\n  "
                               + "\n  ".join(differences))

    def is_running(self) -> bool:
        """Whether the container still exists and runs (``sandbox down`` may have removed it)."""
        try:
            state = self._client.api.inspect_container(self._container_id).get("State", {})
        except docker.errors.NotFound:
            return False
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(f"cannot inspect the sandbox container: {exc}") from exc
        return bool(state.get("Running"))

    def _inspect(self) -> dict[str, Any]:
        try:
            return dict(self._client.api.inspect_container(self._container_id))
        except docker.errors.NotFound as exc:
            raise self._crashed("the container exited during start-up") from exc
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(f"cannot inspect the sandbox container: {exc}") from exc

    def _start_executor(self) -> None:
        self._executor = ExecStream.start(
            self._client.api, self._container_id, EXECUTOR_COMMAND,
            on_stderr=lambda line: log.debug("executor %s: %s", self.session, line))
        self._channel = ExecutorChannel(self._executor.reader, self._executor.writer)
        hello = self._call("hello", {}, self._config.start_timeout_s).result
        width, height = hello.get("width"), hello.get("height")
        if (width, height) != (self.size.width, self.size.height):
            raise self._crashed(f"the desktop is {width}x{height}, not the {self.size} asked")

    def _start_egress(self) -> None:
        if self._config.egress is None:
            return
        if self._config.network:
            raise SandboxError("egress through the proxy needs network none, not full network")
        self._egress = EgressRelay(self._client.api, self._container_id, self._config.egress)
        self._egress.start()

    def _open_viewer(self, password: str) -> None:
        self._relay = VncRelay(self._client.api, self._container_id,
                               port=self._config.vnc_port)
        self._relay.start()
        self._viewer = Viewer(host="127.0.0.1", port=self._relay.port, password=password,
                              view_only=not self._config.vnc_write)

    def _teardown(self) -> None:
        if self._egress is not None:
            self._egress.stop()
            self._egress = None
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        self._close_channel()
        if self._executor is not None:
            self._executor.close()
            self._executor = None
        self._viewer = None
        # By name when the id is not known yet: a stop that lands inside the create call
        # leaves a container the id was never returned for.
        with contextlib.suppress(SandboxError):
            remove_sandbox(self._client, self._container_id or self._name)
        if self._log_stream is not None:
            with contextlib.suppress(Exception):
                self._log_stream.close()

    # --- using the desktop -----------------------------------------------------------------------

    def _crashed(self, message: str) -> SandboxCrashed:
        """A crash error carrying the last words of the executor and the container."""
        parts = [message]
        if self._executor is not None and self._executor.stderr.recent:
            parts.append("executor stderr:\n  " + "\n  ".join(self._executor.stderr.recent))
        if self._logs:
            parts.append("container log:\n  " + "\n  ".join(list(self._logs)[-15:]))
        return SandboxCrashed("\n".join(parts))
