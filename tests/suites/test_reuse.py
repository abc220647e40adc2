"""The worker's kept desktop under ``isolation: checkpoint``, on the real local sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.suites.reuse import WarmDesktops
from audit.log import AuditLog
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

pytestmark = [pytest.mark.x11]
KEY = ("suite.yaml", "local", False)
SLEEPER = "nohup sleep 300 >/dev/null 2>&1 &"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(tmp_path / "audit.db") as opened:
        yield opened


@pytest.fixture
def desktops() -> Iterator[WarmDesktops]:
    kept = WarmDesktops()
    yield kept
    kept.discard()


def _sh(box: Sandbox, script: str) -> str:
    result = box.check(["sh", "-c", script])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _sleepers(box: Sandbox) -> int:
    return int(_sh(box, "pgrep -c -x sleep || true").strip() or 0)


def test_the_next_lease_puts_files_back_and_ends_what_a_case_started(
        log: AuditLog, desktops: WarmDesktops) -> None:
    first = desktops.lease(KEY, log, LocalSandbox)
    first.box.start()
    _sh(first.box, f"mkdir -p ~/work && echo alpha > ~/work/a.txt && {SLEEPER}")
    taken = first.checkpoint_after_setup()
    assert "sleep" in taken["processes"]
    assert desktops.give_back(first, reusable=True)
    _sh(first.box, f"echo beta > ~/work/a.txt && echo new > ~/work/b.txt && {SLEEPER}")
    assert _sleepers(first.box) == 2

    second = desktops.lease(KEY, log, LocalSandbox)

    assert second.box is first.box
    assert second.reset is not None
    assert second.reset["ended"] == ["sleep"]
    assert _sh(second.box, "cat ~/work/a.txt; ls ~/work") == "alpha\na.txt\n"
    assert _sleepers(second.box) == 1  # the setup's own still runs


def test_a_reset_that_fails_brings_a_fresh_sandbox_and_says_why(
        log: AuditLog, desktops: WarmDesktops) -> None:
    first = desktops.lease(KEY, log, LocalSandbox)
    first.box.start()
    _sh(first.box, "mkdir -p ~/work && echo alpha > ~/work/a.txt")
    first.checkpoint_after_setup()
    desktops.give_back(first, reusable=True)
    _sh(first.box, "rm ~/work/a.txt")
    shutil.rmtree(f"{log.path}.checkpoints")  # the blobs the reset needs are gone

    second = desktops.lease(KEY, log, LocalSandbox)

    assert second.box is not first.box
    assert not second.running
    assert second.reset is None
    assert "the reset failed" in second.fallback


def test_an_attempt_that_errored_does_not_hand_its_desktop_on(
        log: AuditLog, desktops: WarmDesktops) -> None:
    first = desktops.lease(KEY, log, LocalSandbox)
    first.box.start()
    first.checkpoint_after_setup()
    assert not desktops.give_back(first, reusable=False)
    first.box.stop()
    assert desktops.lease(KEY, log, LocalSandbox).box is not first.box
