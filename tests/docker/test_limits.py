"""Resource limits hold: a fork loop stops at the pids limit, a memory hog is killed."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from sandbox.actions import MouseMove
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.docker_hardening import DockerLimits

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

LIMITS = DockerLimits(pids=96, memory_mb=384)

FORK_LOOP = """
import os, signal, time
children = []
try:
    while len(children) < 10_000:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    print("unbounded", len(children))
except OSError as exc:
    print("stopped", len(children), exc.errno)
finally:
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
"""

# Writes every byte, so the pages are really resident (a bare bytearray() would not be).
MEMORY_HOG = "hog = b'\\x01' * (1024 * 1024 * 1024); print('survived', len(hog))"


@pytest.fixture(scope="module")
def small_box(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[DockerSandbox]:
    config = DockerSandboxConfig(image=desktop_image, limits=LIMITS)
    with DockerSandbox(docker_client, config) as sandbox:
        yield sandbox


def test_fork_loop_stops_at_the_pids_limit(small_box: DockerSandbox) -> None:
    result = small_box.check(["python3", "-c", FORK_LOOP], timeout_s=60)
    words = result.stdout.split()
    assert words[0] == "stopped", result.stdout + result.stderr
    assert 0 < int(words[1]) < LIMITS.pids
    assert int(words[2]) == 11  # EAGAIN: the kernel refused the next fork


def test_allocation_past_the_memory_limit_is_killed(small_box: DockerSandbox) -> None:
    result = small_box.check(["python3", "-c", MEMORY_HOG], timeout_s=60)
    assert "survived" not in result.stdout
    assert result.exit_code in {-9, 137}  # SIGKILL from the cgroup's OOM killer


def test_desktop_survives_both(small_box: DockerSandbox) -> None:
    result = small_box.execute(MouseMove(x=10, y=10), settle=False)
    assert result.frame.width == small_box.size.width
