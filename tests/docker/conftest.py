"""Fixtures for the Docker backend tests: one engine client, one image build per session.

Every test here needs a running engine; they skip (with the fix in the reason)
only when ``docker info`` would fail.  The image is built once per session,
through the same code as ``deskhand sandbox build`` (a no-op when up to date).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir
from sandbox.docker import DockerSandbox, DockerSandboxConfig


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers `docker info` ({exc}); "
                    "run scripts/ensure_docker.sh (as root) to test the docker backend")
    yield client
    client.close()


@pytest.fixture(scope="session")
def desktop_image(docker_client: docker.DockerClient) -> str:
    """The desktop image, built (or found up to date) once per test session."""
    options = BuildOptions(cache_dir=default_cache_dir())
    return build_image(docker_client, options, SilentProgress()).image


@pytest.fixture(scope="module")
def desktop(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[DockerSandbox]:
    """One running sandbox with the default (locked-down) settings, shared by a module."""
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as sandbox:
        yield sandbox



@pytest.fixture(scope="session")
def bridge_address(docker_client: docker.DockerClient) -> str:
    """The host's address on the default docker bridge (what a bridged container sees as its
    gateway), read from the interface with SIOCGIFADDR."""
    options = docker_client.networks.get("bridge").attrs["Options"]
    name = options.get("com.docker.network.bridge.name", "docker0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
    return socket.inet_ntoa(packed[20:24])
