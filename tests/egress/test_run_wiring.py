"""A run gets its egress from the policy and ``--allow-host``: the sandbox is handed the
proxy, the session records the mode, and the start-up self-check lands in the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.registry import SandboxInputs
from agent.runs import RunOptions, RunServices, open_run, plan_run
from agent.settings import Settings
from audit.log import AuditLog
from sandbox.base import Sandbox
from sandbox.egress.resolver import MappedResolver
from sandbox.fake import FakeSandbox

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "terminal-note.yaml"


def deskhand(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "run", "--db", str(tmp_path / "audit.db"),
         "--no-perception", "--script", str(DEMO), *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path)})


@pytest.mark.parametrize(("args", "reason"), [
    (["--sandbox", "fake", "--allow-host", "bad host!"],
     "--allow-host: 'bad host!' is not a host name"),
    (["--sandbox", "local", "--allow-host", "wiki.example"], "needs the docker sandbox"),
])
def test_bad_allow_hosts_exit_2_with_one_line(tmp_path: Path, args: list[str],
                                              reason: str) -> None:
    proc = deskhand(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert reason in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


class Capturing:
    def __init__(self) -> None:
        self.inputs: list[SandboxInputs] = []

    def __call__(self, kind: str, inputs: SandboxInputs) -> Sandbox:
        self.inputs.append(inputs)
        return FakeSandbox(size=inputs.size)


def test_allow_host_hands_the_sandbox_a_proxy_and_the_session_its_self_check(
        tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="fake",
                        planner="script", perception=False, approval_timeout_s=0,
                        allow_hosts=("wiki.example",))
    sandboxes = Capturing()
    options = RunOptions(services=RunServices(make_sandbox=sandboxes),
                         resolver=MappedResolver(public={"wiki.example": "127.0.0.1"}))
    plan = plan_run(settings, script=DEMO)
    with open_run(plan, options) as run:
        summary = run.loop.run(plan.task)
    assert sandboxes.inputs[0].egress is not None
    with AuditLog.open(tmp_path / "audit.db") as log:
        session = log.get_session(summary.session_id)
        checks = [e.data for e in log.events(session.id) if e.kind == "network_selfcheck"]
    assert session.extra["egress"]["mode"] == "allowlist"
    assert session.extra["egress"]["allow"] == ["wiki.example"]
    (check,) = checks
    assert check["denied"]["host"] == "169.254.169.254"
    assert check["denied"]["outcome"] == "denied"
    assert check["allowed"]["host"] == "wiki.example"
    assert "skipped: the allowed host wiki.example:443 is not reachable" in check["notes"][0]
