"""SIGTERM and SIGHUP stop `deskhand run` and `deskhand sandbox up` as cleanly as Ctrl-C:
the session ends interrupted with the signal named, the container is removed, exit 130
(`sandbox up`, whose normal end is a stop, exits 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from audit.log import AuditLog
from sandbox.manage import LABEL_OWNER_PID

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

WAITING_SCRIPT = "task: wait a long time\nsteps:\n  - screenshot\n  - wait: 25\n"


def owned_containers(client: docker.DockerClient, pid: int) -> list[str]:
    # ignore_removed: one that goes between the listing and its inspection is gone already.
    return [c.id for c in client.containers.list(
        all=True, filters={"label": f"{LABEL_OWNER_PID}={pid}"}, ignore_removed=True)]


def spawn(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path)}, start_new_session=True)


def read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never printed: {''.join(seen)}")


@pytest.mark.parametrize(("signum", "named"), [(signal.SIGTERM, "SIGTERM"),
                                               (signal.SIGHUP, "SIGHUP")])
def test_a_signal_mid_run_closes_the_session_and_removes_the_container(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str,
        signum: signal.Signals, named: str) -> None:
    script = tmp_path / "wait.yaml"
    script.write_text(WAITING_SCRIPT, encoding="utf-8")
    db = tmp_path / "audit.db"
    with spawn(tmp_path, "run", "--script", str(script), "--sandbox", "docker", "--db", str(db),
               "--no-perception") as proc:
        read_until(proc, "#0")  # the screenshot ran; the wait is under way
        assert owned_containers(docker_client, proc.pid)
        stopped_at = time.monotonic()
        proc.send_signal(signum)
        assert proc.stdout is not None
        output = proc.stdout.read()
        assert proc.wait(timeout=60) == 130, output
        took = time.monotonic() - stopped_at
    assert owned_containers(docker_client, proc.pid) == [], "the container outlived the run"
    assert took < 15, f"stopping took {took:.1f} s"
    with AuditLog.open(db) as log:
        [session] = log.list_sessions()
        steps = log.steps(session.id)
    assert session.outcome == "interrupted"
    assert named in (session.reason or "")
    assert [s.status for s in steps] == ["done", "interrupted"]


def test_sigterm_stops_sandbox_up_and_removes_its_container(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    with spawn(tmp_path, "sandbox", "up") as proc:
        read_until(proc, "Ctrl-C stops it")
        assert owned_containers(docker_client, proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        output = proc.stdout.read()
        assert proc.wait(timeout=60) == 0, output
    assert "the container is gone" in output
    assert owned_containers(docker_client, proc.pid) == []


def test_more_signals_while_sandbox_up_removes_its_desktop_are_noted_and_ignored(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    with spawn(tmp_path, "sandbox", "up") as proc:
        read_until(proc, "Ctrl-C stops it")
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)  # impatient: again, while the container goes
        proc.send_signal(signal.SIGTERM)
        output = exit_0_output(proc)
    assert_gone_without_traceback(output, docker_client, proc.pid)


def exit_0_output(proc: subprocess.Popen[str]) -> str:
    """What the stopped process printed; it must have exited 0."""
    assert proc.stdout is not None
    output = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, output
    return output


def assert_gone_without_traceback(output: str, client: docker.DockerClient, pid: int) -> None:
    assert "the container is gone" in output
    assert "Traceback" not in output
    assert owned_containers(client, pid) == []


def test_a_stop_while_sandbox_up_starts_removes_the_desktop_and_exits_0(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    with spawn(tmp_path, "sandbox", "up") as proc:
        deadline = time.monotonic() + 60
        while not owned_containers(docker_client, proc.pid):  # created: start-up under way
            assert proc.poll() is None, f"sandbox up ended early: {proc.communicate()[0]}"
            assert time.monotonic() < deadline, "sandbox up never created its container"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        output = exit_0_output(proc)
    assert_gone_without_traceback(output, docker_client, proc.pid)


def test_sandbox_up_notices_its_container_removed_by_sandbox_down(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    with spawn(tmp_path, "sandbox", "up") as proc:
        read_until(proc, "Ctrl-C stops it")
        [container] = owned_containers(docker_client, proc.pid)
        down = subprocess.run([sys.executable, "-m", "agent", "sandbox", "down", container[:12]],
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
        assert proc.stdout is not None
        output = proc.stdout.read()
        assert proc.wait(timeout=30) == 1, output
    assert "was removed" in output


def test_more_signals_during_clean_up_leave_no_container_or_pending_step(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    script = tmp_path / "wait.yaml"
    script.write_text(WAITING_SCRIPT, encoding="utf-8")
    db = tmp_path / "audit.db"
    with spawn(tmp_path, "run", "--script", str(script), "--sandbox", "docker", "--db", str(db),
               "--no-perception") as proc:
        read_until(proc, "#0")
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)  # impatient: again, while the container goes
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        output = proc.stdout.read()
        assert proc.wait(timeout=60) == 130, output
    assert owned_containers(docker_client, proc.pid) == []
    with AuditLog.open(db) as log:
        [session] = log.list_sessions()
        steps = log.steps(session.id)
    assert session.outcome == "interrupted"
    assert "pending" not in [s.status for s in steps]
