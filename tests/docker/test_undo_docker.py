"""Checkpoint, `rm -rf ~/work`, undo in the hardened container: every file back, in the chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agent.undo import CheckpointBounds, take_checkpoint, undo
from audit.checkpoints import CHECKPOINT_EVENT, ROLLBACK_EVENT
from audit.log import AuditLog
from audit.records import SessionInfo
from audit.verify import verify
from sandbox.docker import DockerSandbox, DockerSandboxConfig

MAKE_WORK = r"""
import os
w = os.path.expanduser("~/work")
os.makedirs(w + "/deep", exist_ok=True)
open(w + "/notes.txt", "w").write("keep me\n" * 100)
open(w + "/deep/blob.bin", "wb").write(os.urandom(200_000))
open("/tmp/scratch.txt", "w").write("tmp too\n")
"""
HASHES = r"""
import hashlib, os
for root in (os.path.expanduser("~/work"), "/tmp/scratch.txt"):
    paths = [root] if os.path.isfile(root) else sorted(
        os.path.join(t, n) for t, _, ns in os.walk(root) for n in ns)
    for p in paths:
        print(p, hashlib.sha256(open(p, "rb").read()).hexdigest())
"""


@pytest.fixture(scope="module")
def box(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[DockerSandbox]:
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as sandbox:
        yield sandbox


def _run(box: DockerSandbox, program: str) -> str:
    result = box.check(["python3", "-c", program])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_undo_after_rm_rf_in_the_container_restores_home_and_tmp(box: DockerSandbox,
                                                                 tmp_path: Path) -> None:
    _run(box, MAKE_WORK)
    before = _run(box, HASHES)
    with AuditLog.open(tmp_path / "audit.db") as log:
        session = log.start_session(SessionInfo(
            task="clean up", planner="script", model="", policy_name="default",
            policy_sha256="0" * 64, sandbox_kind="docker", sandbox_image="", screen_width=1280,
            screen_height=800, network=False))
        bounds = CheckpointBounds(roots=("~", "/tmp"))
        assert take_checkpoint(box, log, session, 1, bounds)
        assert box.check(["sh", "-c", "rm -rf ~/work /tmp/scratch.txt"]).exit_code == 0
        assert _run(box, HASHES) == ""

        outcome = undo(box, log, session, 1, bounds)

        assert outcome.restored, outcome.message
        assert _run(box, HASHES) == before
        assert [e.kind for e in log.events(session)].count(ROLLBACK_EVENT) == 1
        (taken,) = [e.data for e in log.events(session) if e.kind == CHECKPOINT_EVENT]
        assert taken["transfer"] == "stream"  # the image's executor has the file ops
    assert verify(tmp_path / "audit.db").ok
