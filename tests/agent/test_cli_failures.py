"""Failures a user can cause end in one readable line naming the thing at fault and a
documented exit code, never a traceback; read-only logs are read and verified in place;
exit codes tell invalid steps, denied steps and planner failures apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "terminal-note.yaml"


def deskhand(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path), "COLUMNS": "200"},
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output


def record_a_run(tmp_path: Path, db: Path, script: Path = DEMO, *extra: str
                 ) -> subprocess.CompletedProcess[str]:
    return deskhand(tmp_path, "run", "--script", str(script), "--sandbox", "fake",
                    "--db", str(db), "--no-perception", *extra)


@pytest.fixture
def not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not an audit log\n" * 50, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["run", "--script", str(DEMO), "--sandbox", "fake",
                                      "--no-perception"],
                                     ["tui"], ["audit", "verify"], ["audit", "head"],
                                     ["sessions"], ["export", "abc", "--html", "x.html"]])
def test_a_db_that_is_not_a_database_is_named_in_one_line(
        tmp_path: Path, not_a_database: Path, command: list[str]) -> None:
    proc = deskhand(tmp_path, *command, "--db", str(not_a_database))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_line_error(proc, str(not_a_database), "not an audit database")


@pytest.fixture
def read_only_archive(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a recorded audit log, made read-only: a read-only bind mount as
    root (who ignores permission bits), the permission bits otherwise."""
    archive = tmp_path / "archive"
    archive.mkdir()
    proc = record_a_run(tmp_path, archive / "audit.db")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(archive / "audit.db.locks", ignore_errors=True)
    if os.geteuid() != 0:
        for path in [archive, *archive.iterdir()]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield archive
        for path in [archive, *archive.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    bind = subprocess.run(["mount", "--bind", str(archive), str(mounted)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr!r}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
        yield mounted
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_read_only_log_is_read_and_verified_in_place(tmp_path: Path,
                                                       read_only_archive: Path) -> None:
    db = read_only_archive / "audit.db"
    before = sorted(p.name for p in read_only_archive.iterdir())

    verify = deskhand(tmp_path, "audit", "verify", "--db", str(db))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok:")
    head = deskhand(tmp_path, "audit", "head", "--db", str(db))
    assert head.returncode == 0, head.stderr
    sessions = deskhand(tmp_path, "sessions", "--db", str(db))
    assert sessions.returncode == 0, sessions.stderr
    session_id = sessions.stdout.split()[0]
    export = deskhand(tmp_path, "export", session_id, "--db", str(db),
                      "--html", str(tmp_path / "run.html"))
    assert export.returncode == 0, export.stdout + export.stderr
    replay = deskhand(tmp_path, "replay", session_id, "--db", str(db))
    assert replay.returncode == 0, replay.stdout + replay.stderr

    assert sorted(p.name for p in read_only_archive.iterdir()) == before, "files were created"


@pytest.mark.parametrize("command", [["run", "--script", str(DEMO), "--sandbox", "fake",
                                      "--no-perception"], ["tui"]])
def test_writing_a_log_into_a_read_only_folder_is_one_line(
        tmp_path: Path, read_only_archive: Path, command: list[str]) -> None:
    db = read_only_archive / "new.db"
    proc = deskhand(tmp_path, *command, "--db", str(db))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_line_error(proc, str(db), "read-only")


def test_export_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    assert record_a_run(tmp_path, db).returncode == 0
    session_id = deskhand(tmp_path, "sessions", "--db", str(db)).stdout.split()[0]
    target = tmp_path / "no" / "such" / "run.html"
    proc = deskhand(tmp_path, "export", session_id, "--db", str(db), "--html", str(target))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_line_error(proc, str(target), "does not exist")


@pytest.mark.parametrize(("content", "problem"), [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00", "binary file"),
    ("task: t\nsteps:\n  - screenshot\n".encode("utf-16"), "UTF-16"),
    (b"task: caf\xe9\nsteps:\n  - screenshot\n", "not UTF-8"),
])
def test_a_script_that_is_not_utf8_text_is_named_in_one_line(
        tmp_path: Path, content: bytes, problem: str) -> None:
    script = tmp_path / "steps.yaml"
    script.write_bytes(content)
    proc = record_a_run(tmp_path, tmp_path / "audit.db", script)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_line_error(proc, str(script), problem)


# -- exit codes ------------------------------------------------------------------------------

OFF_SCREEN_CLICK = "task: click off the screen\nsteps:\n  - click: [2000, 5]\n  - screenshot\n"


def test_an_invalid_click_is_in_the_summary_and_strict_makes_it_exit_1(tmp_path: Path) -> None:
    script = tmp_path / "click.yaml"
    script.write_text(OFF_SCREEN_CLICK, encoding="utf-8")
    lenient = record_a_run(tmp_path, tmp_path / "audit.db", script)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "1 step invalid" in lenient.stdout
    strict = record_a_run(tmp_path, tmp_path / "audit.db", script, "--strict")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "1 step invalid" in strict.stdout


def test_a_denied_step_is_in_the_summary_and_strict_makes_it_exit_1(tmp_path: Path) -> None:
    # No terminal and no approver attached: the demo's `rm -rf ~/keep` is denied.
    strict = record_a_run(tmp_path, tmp_path / "audit.db", DEMO, "--strict")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "1 step denied" in strict.stdout


def test_a_planner_that_cannot_reach_its_provider_exits_4(tmp_path: Path) -> None:
    proc = deskhand(tmp_path, "run", "open the calculator", "--planner", "openai",
                    "--base-url", "http://127.0.0.1:9/v1", "--sandbox", "fake",
                    "--no-perception", "--db", str(tmp_path / "audit.db"))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    one_line_error(proc, "planner failed")


def test_sessions_with_an_unknown_outcome_exits_2_naming_the_choices(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    assert record_a_run(tmp_path, db).returncode == 0
    proc = deskhand(tmp_path, "sessions", "--db", str(db), "--outcome", "bogus")
    assert proc.returncode == 2
    one_line_error(proc, "bogus", "interrupted", "running")


def test_version_prints_the_version(tmp_path: Path) -> None:
    proc = deskhand(tmp_path, "--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("deskhand ")


@pytest.mark.parametrize("command", [["sessions"], ["run", "--script", str(DEMO),
                                                   "--sandbox", "fake", "--no-perception"]])
def test_debug_shows_the_traceback_behind_the_line(tmp_path: Path, not_a_database: Path,
                                                   command: list[str]) -> None:
    proc = deskhand(tmp_path, "--debug", *command, "--db", str(not_a_database))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert "not an audit database" in proc.stderr
