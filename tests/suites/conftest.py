"""Fixtures for suite runs on real Docker desktops: the engine, the image, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir

TERMINAL_SETUP = """\
setup:
  - exec: "mkdir -p ~/work && printf 'alpha\\\\n' > ~/work/a.txt"
  - launch: "xterm -title work-terminal"
  - wait_for_window: {title: work-terminal, timeout: 20}
"""


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


@pytest.fixture(scope="session")
def kit() -> SuiteKit:
    """Helpers the suite tests share (fixtures, since test modules do not import each other)."""
    return SuiteKit()


class SuiteKit:
    terminal_setup = TERMINAL_SETUP

    @staticmethod
    def deskhand(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return deskhand(*args, timeout=timeout)

    @staticmethod
    def write_suite(folder: Path, name: str, body: str) -> Path:
        return write_suite(folder, name, body)

    @staticmethod
    def line_of(path: Path, needle: str, after: str = "") -> int:
        return line_of(path, needle, after)

    @staticmethod
    def containers_of(client: docker.DockerClient, pids: Sequence[int]) -> list[str]:
        return containers_of(client, pids)


def deskhand(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``deskhand ARGS`` in a child process, as a user or CI would run it."""
    return subprocess.run([sys.executable, "-m", "agent", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def write_suite(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.suite.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def line_of(path: Path, needle: str, after: str = "") -> int:
    """The 1-based line of the first ``needle`` after the first ``after``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, text in enumerate(lines) if after in text) if after else 0
    return next(i for i, text in enumerate(lines) if i >= start and needle in text) + 1


def containers_of(client: docker.DockerClient, pids: Sequence[int]) -> list[str]:
    wanted = {str(pid) for pid in pids}
    return [c.name for c in client.containers.list(all=True, filters={"label":
                                                                      "deskhand.session"})
            if c.labels.get("deskhand.owner_pid") in wanted]
