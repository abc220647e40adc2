"""The Docker engine and image for the undo story's container half (skipped without one)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import docker.errors
import pytest

from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers ({exc}); run scripts/ensure_docker.sh as root")
    yield client
    client.close()


@pytest.fixture(scope="session")
def desktop_image(docker_client: docker.DockerClient) -> str:
    return build_image(docker_client, BuildOptions(cache_dir=default_cache_dir()),
                       SilentProgress()).image
