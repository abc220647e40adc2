"""The TUI's undo key on a real run in the container: a human approves `rm -rf ~/work` in the
approval queue, presses `u` on that step in the approval history, confirms, and every file is
back byte for byte, with the rollback in the audit log and on the timeline.  In this process
(the live screen) and from `deskhand tui --attach` for a `deskhand run` in another process.
A step without a checkpoint says so and changes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from textual.pilot import Pilot

from agent.registry import SandboxInputs
from agent.settings import Settings
from agent.undo import CANNOT_RESTORE
from audit.checkpoints import ROLLBACK_EVENT
from audit.log import AuditLog
from audit.undo_marks import UNDO_REQUEST_EVENT
from audit.verify import verify
from sandbox.base import Sandbox
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.manage import LABEL_OWNER_PID
from tests.tui.conftest import USER, make_app, wait_until
from tui.app import DeskhandApp
from tui.screens.attach import AttachScreen
from tui.screens.live import LiveScreen
from tui.screens.undo_confirm import UndoConfirmScreen
from tui.widgets.approval_history import ApprovalHistory
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.timeline import UNDO_ROW, StepTimeline

pytestmark = [pytest.mark.docker, pytest.mark.anyio, pytest.mark.timeout(600)]

SEED = ("mkdir -p ~/work/deep && seq 1 20000 > ~/work/notes.txt && "
        "seq 5 90000 > ~/work/deep/numbers.txt && ln -s notes.txt ~/work/link")
SCRIPT = f"""task: clean up ~/work
steps:
  - key: ctrl+alt+t
  - wait: 2
  - type: "{SEED}\\n"
  - type: "rm -rf ~/work\\n"
""" + "".join("  - wait: 1\n" for _ in range(60))
OPEN_TERMINAL_STEP, RM_STEP = 0, 3
# Each file under ~/work: its path, mode and the sha256 of its bytes (a link's: its target).
HASHES = r"""
import hashlib, os
w = os.path.expanduser("~/work")
for top, _, names in sorted(os.walk(w)):
    for n in sorted(names):
        p = os.path.join(top, n)
        body = os.readlink(p).encode() if os.path.islink(p) else open(p, "rb").read()
        print(os.path.relpath(p, w), oct(os.lstat(p).st_mode), hashlib.sha256(body).hexdigest())
"""
TERMINAL = (160, 48)


def _seeded_hashes() -> str:
    """What HASHES prints once the seed line has run."""
    def line(path: str, mode: str, body: bytes) -> str:
        return f"{path} {mode} {hashlib.sha256(body).hexdigest()}\n"

    numbers = "".join(f"{n}\n" for n in range(5, 90001)).encode()
    notes = "".join(f"{n}\n" for n in range(1, 20001)).encode()
    return (line("link", "0o120777", b"notes.txt") + line("notes.txt", "0o100644", notes)
            + line("deep/numbers.txt", "0o100644", numbers))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "clean.yaml"
    path.write_text(SCRIPT, "utf-8")
    return path


class DockerSandboxes:
    """Builds the run's sandbox from the test image and keeps it for the test to look into."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.made: list[DockerSandbox] = []

    def __call__(self, kind: str, inputs: SandboxInputs) -> Sandbox:
        assert kind == "docker"
        box = DockerSandbox(self.client, DockerSandboxConfig(image=self.image))
        self.made.append(box)
        return box


def _settings(tmp_path: Path, db: Path) -> Settings:
    return Settings(home=tmp_path / "home", db=db, sandbox="docker", policy="default",
                    planner="script", perception=False, approval_timeout_s=60)


def _hashes(run: Callable[[list[str]], tuple[int, str]]) -> str:
    code, out = run(["python3", "-c", HASHES])
    assert code == 0, out
    return out


def _checker(box: Sandbox) -> Callable[[list[str]], tuple[int, str]]:
    def run(argv: list[str]) -> tuple[int, str]:
        result = box.check(argv)
        return result.exit_code, result.stdout + result.stderr
    return run


async def _approve_until(pilot: Pilot[Any], queue: ApprovalQueue,
                         done: Callable[[], bool]) -> None:
    """Approve the rm step, again when the run asks again (the terminal redrew near the
    prompt between question and answer, so the answer went stale), until ``done()``."""
    give_up = time.monotonic() + 60
    while not done():
        assert time.monotonic() < give_up, "timed out waiting for rm -rf to remove ~/work"
        if queue.current is not None:
            await pilot.press("a")
        await pilot.pause(0.1)


async def _undo_from_history(pilot: Pilot[Any], app: DeskhandApp, step: int) -> None:
    """Highlight ``step``'s approval in the history, press u, check the confirmation, y."""
    history = app.screen.query_one(ApprovalHistory)
    await wait_until(pilot, lambda: history.row_count >= 1, what="the approval in the history")
    target = history.target_at_cursor()
    assert target is not None
    assert target.step_index == step
    await wait_until(pilot, lambda: "◆" in str(history.get_row_at(0)[4]),
                     what="the checkpoint beside the approved step")
    await pilot.click(ApprovalHistory)
    await pilot.press("u")
    await wait_until(pilot, lambda: isinstance(app.screen, UndoConfirmScreen),
                     what="the confirmation")
    shown = " ".join(str(part.render()) for part in app.screen.query("Static"))
    assert f"Undo step {step} (type 'rm -rf ~/work\\n')?" in shown
    assert f"right before step {step}: ~/work (3 files, " in shown
    assert CANNOT_RESTORE in shown
    await pilot.press("y")


def _rollbacks(db: Path) -> list[int]:
    with AuditLog.open_read_only(db) as log:
        (session,) = log.list_sessions()
        return [int(e.data["to_step"]) for e in log.events(session.id) if e.kind == ROLLBACK_EVENT]


async def test_u_in_the_live_screen_puts_back_what_an_approved_rm_removed(
        tmp_path: Path, script: Path, docker_client: docker.DockerClient,
        desktop_image: str) -> None:
    db = tmp_path / "audit.db"
    sandboxes = DockerSandboxes(docker_client, desktop_image)
    with AuditLog.open(db) as log:
        app = make_app(log, _settings(tmp_path, db), script=script, sandboxes=sandboxes)
        async with app.run_test(size=TERMINAL) as pilot:
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen), what="live")
            live = app.screen
            assert isinstance(live, LiveScreen)
            queue = live.query_one(ApprovalQueue)
            await wait_until(pilot, lambda: queue.current is not None, timeout_s=120,
                             what="the rm step's approval")
            run = _checker(sandboxes.made[0])
            await wait_until(pilot, lambda: _hashes(run) == _seeded_hashes(),
                             what="the seeded ~/work")
            await _approve_until(pilot, queue, lambda: run(["sh", "-c", "test -e ~/work"])[0] == 1)

            await _no_checkpoint_changes_nothing(pilot, app, live, db)
            await _undo_from_history(pilot, app, RM_STEP)
            await wait_until(pilot, lambda: _rollbacks(db) == [RM_STEP], timeout_s=60,
                             what="the rollback")
            assert _hashes(run) == _seeded_hashes()
            timeline = live.query_one(StepTimeline)
            await wait_until(pilot, lambda: any(str(key.value).startswith(UNDO_ROW)
                                                for key in timeline.rows),
                             what="the rollback row on the timeline")
            said = [notice.message for notice in app._notifications]
            assert any(m.startswith(f"Undone to before step {RM_STEP} (") for m in said), said
            await pilot.press("x")
            await wait_until(pilot, lambda: live.summary is not None, timeout_s=60,
                             what="the run to stop")
    assert verify(db).ok


async def _no_checkpoint_changes_nothing(pilot: Pilot[Any], app: DeskhandApp, live: LiveScreen,
                                         db: Path) -> None:
    timeline = live.query_one(StepTimeline)
    timeline.focus()
    timeline.move_cursor(row=OPEN_TERMINAL_STEP)
    await pilot.press("u")
    await pilot.pause()
    assert not isinstance(app.screen, UndoConfirmScreen)
    said = [notice.message for notice in app._notifications]
    assert f"step {OPEN_TERMINAL_STEP} has no checkpoint; nothing was changed" in said, said
    with AuditLog.open_read_only(db) as log:
        (session,) = log.list_sessions()
        assert not [e for e in log.events(session.id) if e.kind == UNDO_REQUEST_EVENT]


@pytest.fixture
def other_run(tmp_path: Path, script: Path, desktop_image: str) -> Iterator[subprocess.Popen[str]]:
    """``deskhand run`` of the script in another process, on the test image, no terminal."""
    command = [sys.executable, "-m", "agent", "run", "--script", str(script),
               "--sandbox", "docker", "--no-perception", "--approval-timeout", "60",
               "--db", str(tmp_path / "audit.db")]
    env = {**os.environ, "DESKHAND_IMAGE": desktop_image, "COLUMNS": "200"}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    yield process
    if process.poll() is None:
        process.terminate()  # stops like Ctrl-C: the session ends, the container goes
    print(process.communicate(timeout=120)[0])


def _container_of(client: docker.DockerClient, process: subprocess.Popen[str]) -> \
        Container | None:
    found = client.containers.list(filters={"label": f"{LABEL_OWNER_PID}={process.pid}"})
    return found[0] if found else None


async def test_u_in_the_attached_tui_undoes_a_step_of_a_run_in_another_process(
        tmp_path: Path, docker_client: docker.DockerClient,
        other_run: subprocess.Popen[str]) -> None:
    db = tmp_path / "audit.db"
    with AuditLog.open(db) as log:
        app = make_app(log, _settings(tmp_path, db), attach=True)
        async with app.run_test(size=TERMINAL) as pilot:
            assert isinstance(app.screen, AttachScreen)
            queue = app.screen.query_one(ApprovalQueue)
            await wait_until(pilot, lambda: queue.current is not None
                             or other_run.poll() is not None, timeout_s=180,
                             what="the other run's approval request")
            assert queue.current is not None, other_run.communicate()[0]
            container = _container_of(docker_client, other_run)
            assert container is not None

            def run(argv: list[str]) -> tuple[int, str]:
                code, out = container.exec_run(argv)
                return code, out.decode()

            await wait_until(pilot, lambda: _hashes(run) == _seeded_hashes(),
                             what="the seeded ~/work")
            await _approve_until(pilot, queue, lambda: run(["sh", "-c", "test -e ~/work"])[0] == 1)
            await _undo_from_history(pilot, app, RM_STEP)
            await wait_until(pilot, lambda: _rollbacks(db) == [RM_STEP], timeout_s=60,
                             what="the other run's rollback")
            assert _hashes(run) == _seeded_hashes()
            history = app.screen.query_one(ApprovalHistory)
            await wait_until(pilot, lambda: "⟲" in str(history.get_row_at(0)[4]),
                             what="the history marks the step undone")
    with AuditLog.open_read_only(db) as reader:
        (session,) = reader.list_sessions()
        approvals = reader.approvals(session.id)
    assert {(a.answer.approver, a.answer.channel) for a in approvals if a.answer} == {
        (f"{USER}@tui", "tui-attach")}
