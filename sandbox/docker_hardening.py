"""How a deskhand container is locked down, and the check that it really is.

:class:`RunSpec` turns a sandbox's wishes into the keyword arguments of
``client.containers.create``; :func:`hardening_differences` reads ``docker
inspect`` of the running container back and lists every field that is not what
was asked.  The backend refuses to take a single step while that list is not
empty: a daemon flag, a wrapper or a future SDK that quietly drops an option
must not give the agent a weaker box than the session records.

What is asked, and why:

- user 1000 (no sudo in the image, setuid bits stripped), every capability
  dropped, ``no-new-privileges``, the default seccomp profile kept;
- read-only root; size-capped tmpfs (noexec, nosuid, nodev) for /tmp and home;
- pid, memory (swap equal: no swap), CPU limits; no core dumps;
- private pid, ipc, uts and cgroup namespaces; no devices, binds, volumes, ports;
- network ``none`` (only ``lo``) unless the session explicitly asks for the
  default bridge.  A VNC viewer never needs a network: it is relayed through
  ``docker exec`` (see :mod:`sandbox.docker_vnc`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.types

USER = "1000:1000"
HOME = "/home/desk"
_MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class DockerLimits:
    """Resource caps for one sandbox container."""

    memory_mb: int = 2048
    cpus: float = 1.5
    pids: int = 512
    tmp_mb: int = 512
    home_mb: int = 256
    shm_mb: int = 128

    @property
    def nano_cpus(self) -> int:
        return int(self.cpus * 1e9)


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything ``containers.create`` is asked for one sandbox."""

    image: str
    name: str
    labels: Mapping[str, str]
    environment: Mapping[str, str]
    network: bool = False
    limits: DockerLimits = field(default_factory=DockerLimits)

    @property
    def network_mode(self) -> str:
        return "bridge" if self.network else "none"

    @property
    def tmpfs(self) -> dict[str, str]:
        private = "rw,nosuid,nodev,noexec"
        return {"/tmp": f"{private},size={self.limits.tmp_mb}m,mode=1777",
                HOME: f"{private},size={self.limits.home_mb}m,uid=1000,gid=1000,mode=0700"}

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create`` (removed when it exits)."""
        limits = self.limits
        return {
            "image": self.image, "command": ["desktop"], "name": self.name,
            "auto_remove": True, "labels": dict(self.labels),
            "environment": dict(self.environment), "hostname": "deskhand",
            "user": USER, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
            "privileged": False, "read_only": True, "tmpfs": self.tmpfs,
            "network_mode": self.network_mode, "ipc_mode": "private", "cgroupns": "private",
            "pids_limit": limits.pids, "mem_limit": limits.memory_mb * _MIB,
            "memswap_limit": limits.memory_mb * _MIB, "nano_cpus": limits.nano_cpus,
            "shm_size": limits.shm_mb * _MIB,
            "ulimits": [docker.types.Ulimit(name="core", soft=0, hard=0)],
        }


def hardening_differences(attrs: Mapping[str, Any], spec: RunSpec) -> list[str]:
    """Every hardening field of ``docker inspect`` output that differs from ``spec``."""
    host: Mapping[str, Any] = attrs.get("HostConfig") or {}
    config: Mapping[str, Any] = attrs.get("Config") or {}
    checks: list[tuple[str, Any, Any]] = [
        ("Config.User", config.get("User"), USER),
        ("HostConfig.CapDrop", sorted(host.get("CapDrop") or []), ["ALL"]),
        ("HostConfig.CapAdd", host.get("CapAdd") or [], []),
        ("HostConfig.SecurityOpt", sorted(host.get("SecurityOpt") or []), ["no-new-privileges"]),
        ("HostConfig.Privileged", host.get("Privileged"), False),
        ("HostConfig.ReadonlyRootfs", host.get("ReadonlyRootfs"), True),
        ("HostConfig.NetworkMode", host.get("NetworkMode"), spec.network_mode),
        ("HostConfig.Tmpfs", host.get("Tmpfs") or {}, spec.tmpfs),
        ("HostConfig.PidsLimit", host.get("PidsLimit"), spec.limits.pids),
        ("HostConfig.Memory", host.get("Memory"), spec.limits.memory_mb * _MIB),
        ("HostConfig.MemorySwap", host.get("MemorySwap"), spec.limits.memory_mb * _MIB),
        ("HostConfig.NanoCpus", host.get("NanoCpus"), spec.limits.nano_cpus),
        ("HostConfig.Ulimits", host.get("Ulimits"), [{"Name": "core", "Soft": 0, "Hard": 0}]),
    ]
    differences = [f"{name} is {actual!r}, expected {wanted!r}"
                   for name, actual, wanted in checks if actual != wanted]
    differences += _forbidden(host, attrs)
    return differences


def _not_host(mode: Any) -> bool:
    return str(mode or "").lower() != "host"


def _empty(value: Any) -> bool:
    return not value


def _forbidden(host: Mapping[str, Any], attrs: Mapping[str, Any]) -> list[str]:
    """Fields that must be empty or must not share a namespace with the host."""
    rules: list[tuple[str, Any, Callable[[Any], bool], str]] = [
        ("HostConfig.PidMode", host.get("PidMode"), _not_host, "shares the host's pids"),
        ("HostConfig.IpcMode", host.get("IpcMode"), _not_host, "shares the host's IPC"),
        ("HostConfig.UTSMode", host.get("UTSMode"), _not_host, "shares the host's UTS"),
        ("HostConfig.UsernsMode", host.get("UsernsMode"), _not_host, "shares host users"),
        ("HostConfig.CgroupnsMode", host.get("CgroupnsMode"), _not_host, "shares host cgroups"),
        ("HostConfig.Binds", host.get("Binds"), _empty, "has bind mounts"),
        ("HostConfig.Mounts", host.get("Mounts"), _empty, "has mounts"),
        ("Mounts", attrs.get("Mounts"), _empty, "has mounts"),
        ("HostConfig.VolumesFrom", host.get("VolumesFrom"), _empty, "borrows volumes"),
        ("HostConfig.Devices", host.get("Devices"), _empty, "has host devices"),
        ("HostConfig.PortBindings", host.get("PortBindings"), _empty, "publishes ports"),
        ("HostConfig.PublishAllPorts", host.get("PublishAllPorts"), _empty, "publishes ports"),
    ]
    return [f"{name} {problem}: {value!r}" for name, value, ok, problem in rules if not ok(value)]
