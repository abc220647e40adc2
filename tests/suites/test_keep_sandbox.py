"""--keep-sandbox-on-failure keeps the failing desktop, prints how to watch it, ends at Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_kept_sandbox_prints_its_vnc_address_and_goes_at_ctrl_c(
        tmp_path: Path, desktop_image: str, docker_client: docker.DockerClient,
        kit: SuiteKit) -> None:
    suite = kit.write_suite(tmp_path, "keep", "suite: Keep\ndefaults: {sandbox: docker}\n"
                            "cases:\n  - id: fails\n    steps:\n"
                            "      - assert_cmd: {run: 'false', timeout: 0.5}\n")
    runner = subprocess.Popen(
        [sys.executable, "-m", "agent", "test", str(suite), "--output", str(tmp_path / "out"),
         "--keep-sandbox-on-failure"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert runner.stdout is not None
    seen: list[str] = []
    for line in runner.stdout:
        seen.append(line)
        if "press Ctrl-C" in line:
            break
    text = "".join(seen)
    assert "vncviewer 127.0.0.1::" in text
    assert "password:" in text
    assert kit.containers_of(docker_client, [runner.pid])
    runner.send_signal(signal.SIGINT)
    rest, _ = runner.communicate(timeout=120)
    assert runner.returncode == 1, text + rest
    assert kit.containers_of(docker_client, [runner.pid]) == []
