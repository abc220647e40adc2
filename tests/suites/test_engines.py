"""Cases spread over a pool of Docker engines; a dead engine errors only its own cases.

A second engine is started by the test on its own socket, data root and exec
root, and the image is loaded into it with ``docker save | docker -H ... load``.
It gets a bridge of its own, made by the test: a dockerd started with
``--bridge none`` deletes the default ``docker0`` bridge, which would take the
first engine's bridge network (and its image builds) away for the rest of the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
import pytest

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def wait_for_engine(socket: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    url = f"unix://{socket}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the second dockerd exited during start-up"
        if not socket.exists():  # dockerd makes its socket when it listens
            time.sleep(0.2)
            continue
        try:
            client = docker.DockerClient(base_url=url)
        except docker.errors.DockerException:
            time.sleep(0.2)
            continue
        try:
            if client.ping():
                return
        finally:
            client.close()
    raise AssertionError(f"the second dockerd did not answer on {url} in {timeout_s:g} s")


@pytest.fixture(scope="module")
def second_engine(desktop_image: str) -> Iterator[str]:
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed")
    root = Path("/tmp/deskhand-engine2")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    socket = root / "docker.sock"
    url = f"unix://{socket}"
    log = (root / "dockerd.log").open("wb")
    _make_bridge(SECOND_BRIDGE, SECOND_BRIDGE_ADDRESS)
    process = subprocess.Popen(
        ["dockerd", "--host", url, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
         "--bridge", SECOND_BRIDGE, "--iptables=false", "--ip6tables=false"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_engine(socket, process, 60)
        with subprocess.Popen(["docker", "save", desktop_image], stdout=subprocess.PIPE) as save:
            subprocess.run(["docker", "-H", url, "load"], stdin=save.stdout, check=True,
                           capture_output=True, timeout=600)
        assert save.returncode == 0
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        subprocess.run(["ip", "link", "delete", SECOND_BRIDGE], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


SECOND_BRIDGE = "dh-engine2"
# The sandboxes run with network=none, so nothing is ever sent over this bridge.
SECOND_BRIDGE_ADDRESS = "172.31.254.1/24"


def _make_bridge(name: str, address: str) -> None:
    subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)
    for command in (["ip", "link", "add", name, "type", "bridge"],
                    ["ip", "addr", "add", address, "dev", name],
                    ["ip", "link", "set", name, "up"]):
        subprocess.run(command, check=True, capture_output=True)


def test_the_first_engine_keeps_its_bridge(second_engine: str) -> None:
    assert Path("/sys/class/net/docker0").exists(), "starting a second engine removed docker0"


def test_engine_pool_runs_cases_on_both_and_a_dead_one_errors_only_its_case(
        tmp_path: Path, second_engine: str, kit: SuiteKit) -> None:
    cases = "".join(f"  - id: pooled-{i}\n    steps:\n      - wait: 1\n"
                    "      - assert_cmd: {run: 'true'}\n" for i in range(6))
    suite = kit.write_suite(tmp_path, "pool", f"suite: Pool\ndefaults: {{sandbox: docker}}\n"
                            f"cases:\n{cases}")
    dead = f"unix://{tmp_path}/no-engine.sock"
    done = kit.deskhand("test", suite, "--workers", "3", "--output", tmp_path / "out",
                        "--engine", "unix:///var/run/docker.sock", "--engine", second_engine,
                        "--engine", dead)
    lines = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text()
             .splitlines()]
    assert done.returncode == 3, done.stdout + done.stderr
    passed = [x for x in lines if x["status"] == "passed"]
    errored = [x for x in lines if x["status"] == "error"]
    assert {x["engine"] for x in passed} == {"unix:///var/run/docker.sock", second_engine}
    assert len(errored) == 1
    assert errored[0]["engine"] == dead
    assert len(passed) == 5
