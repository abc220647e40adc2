"""``isolation: checkpoint`` on a real desktop: one sandbox for the worker, put back to its
post-setup checkpoint between cases; what case 1 wrote and started is gone in case 2, what
the suite's setup made is still there; results and JUnit as usual."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from junitparser import JUnitXml

from audit.log import AuditLog

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

pytestmark = [pytest.mark.slow]

SUITE = """\
suite: Checkpoint isolation
defaults:
  sandbox: {kind}
  isolation: checkpoint
  timeout: 90
setup:
  - exec: "mkdir -p ~/work && printf 'alpha\\\\n' > ~/work/a.txt"
  - launch: "xterm -title work-terminal"
  - wait_for_window: {{title: work-terminal, timeout: 20}}
cases:
  - id: writes-and-starts
    setup:
      - launch: "xterm -title case-terminal"
      - wait_for_window: {{title: case-terminal, timeout: 20}}
    steps:
      - click: [640, 400]
      - type: "echo written > ~/work/b.txt\\n"
      - assert_file: {{path: ~/work/b.txt, contains: written}}
      - assert_cmd: "echo scratch > /tmp/scratch.txt && echo more >> ~/work/a.txt"
      - assert_cmd: "chmod 600 ~/work/a.txt"
  - id: sees-the-desktop-as-after-setup
    steps:
      - assert_file: {{path: ~/work/b.txt, exists: false, timeout: 1}}
      - assert_file: {{path: /tmp/scratch.txt, exists: false, timeout: 1}}
      - assert_file: {{path: ~/work/a.txt, equals: "alpha\\n", timeout: 1}}
      - assert_cmd: {{run: 'test "$(stat -c %a ~/work/a.txt)" != 600', timeout: 1}}
      - assert_cmd: {{run: "! pgrep -f case-termina[l]", timeout: 1}}
      - assert_cmd: {{run: "pgrep -f work-termina[l]", timeout: 1}}
      - assert_window: work-terminal
"""


def _run_suite(kit: SuiteKit, folder: Path,
               kind: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    suite = kit.write_suite(folder, "isolation", SUITE.format(kind=kind))
    output = folder / "out"
    done = kit.deskhand("test", suite, "--workers", "1", "--output", output,
                        "--reporter", "list,junit,json")
    return output, done


def _check_results(output: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()]
    by_case = {line["case"]: line for line in lines}
    assert {c: r["status"] for c, r in by_case.items()} == {
        "writes-and-starts": "passed", "sees-the-desktop-as-after-setup": "passed"}
    assert by_case["writes-and-starts"]["isolation"] == "container"
    assert by_case["sees-the-desktop-as-after-setup"]["isolation"] == "checkpoint"
    junit = JUnitXml.fromfile(str(output / "junit.xml"))
    assert sum(suite.tests for suite in junit) == 2
    with AuditLog.open(Path(lines[0]["audit_db"])) as log:
        second = by_case["sees-the-desktop-as-after-setup"]["session_id"]
        (reset,) = [e.data for e in log.events(second) if e.kind == "suite_reset"]
        first = by_case["writes-and-starts"]["session_id"]
        (taken,) = [e.data for e in log.events(first) if e.kind == "suite_checkpoint"]
    assert "xterm" in reset["ended"]  # case 1's terminal, started after the checkpoint
    assert reset["written"] >= 1
    assert reset["removed"] >= 2
    assert "xterm" in taken["processes"]


@pytest.mark.docker
def test_checkpoint_isolation_resets_the_container_between_cases(
        tmp_path: Path, desktop_image: str, kit: SuiteKit) -> None:
    _check_results(*_run_suite(kit, tmp_path, "docker"))


@pytest.mark.x11
def test_checkpoint_isolation_resets_the_local_desktop_between_cases(
        tmp_path: Path, kit: SuiteKit) -> None:
    _check_results(*_run_suite(kit, tmp_path, "local"))
