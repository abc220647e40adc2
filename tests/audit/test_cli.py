"""The audit commands as a user runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import typer
from typer.testing import CliRunner

from audit import synthetic
from audit.cli import default_db_path, register
from audit.log import AuditLog


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), list(args))
    return result.exit_code, result.output


def test_verify_passes_and_prints_the_head(recorded: tuple[Path, str]) -> None:
    code, output = _run("audit", "verify", "--db", str(recorded[0]))
    assert code == 0, output
    assert output.startswith("ok:")


def test_verify_fails_naming_the_first_bad_record(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE steps SET status = 'denied' WHERE id = 4")
    code, output = _run("audit", "verify", "--db", str(db_path))
    assert code == 1
    assert "TAMPERED" in output
    assert "steps#4" in output


def test_head_can_be_pasted_back_into_verify(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    code, head = _run("audit", "head", "--db", str(db_path))
    with AuditLog.open(db_path) as log:
        assert head.strip() == str(log.head())
    assert code == 0
    assert _run("audit", "verify", "--db", str(db_path), "--head", head.strip())[0] == 0
    code, output = _run("audit", "verify", "--db", str(db_path), "--head", "nonsense")
    assert code == 2
    assert "HASH" in output or "hex" in output


def test_sessions_lists_one_line_each_with_filters(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        done = synthetic.record_session(log, 1, task="rename the report")
        failed = synthetic.record_session(log, 2, task="book a flight", outcome="failed")
    code, output = _run("sessions", "--db", str(db_path))
    assert code == 0
    lines = output.strip().splitlines()
    assert [line.split()[0] for line in lines] == [failed[:12], done[:12]]
    assert "book a flight" in lines[0]
    assert "2 steps" in lines[0]
    assert _run("sessions", "--db", str(db_path), "--outcome", "done")[1].split()[0] == done[:12]
    assert _run("sessions", "--db", str(db_path), "--grep", "flight")[1].split()[0] == failed[:12]
    assert _run("sessions", "--db", str(db_path), "--since", "2999-01-01")[1].strip() == \
        "no sessions match"
    assert _run("sessions", "--db", str(db_path), "--since", "yesterday")[0] == 2


def test_replay_prints_every_step_when_stdin_is_not_a_terminal(
        recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    code, output = _run("replay", session_id[:5], "--db", str(db_path))
    assert code == 0, output
    assert "12/12" in output
    assert "approved by ana@tty" in output


def test_export_writes_html_or_gif(recorded: tuple[Path, str], tmp_path: Path) -> None:
    db_path, session_id = recorded
    code, output = _run("export", session_id[:6], "--db", str(db_path), "--html",
                        str(tmp_path / "s.html"))
    assert code == 0, output
    assert (tmp_path / "s.html").read_text().startswith("<!doctype html>")
    assert _run("export", session_id, "--db", str(db_path), "--gif",
                str(tmp_path / "s.gif"))[0] == 0
    assert (tmp_path / "s.gif").read_bytes()[:6] == b"GIF89a"
    assert _run("export", session_id, "--db", str(db_path))[0] == 2


def test_unknown_sessions_and_missing_databases_are_usage_errors(
        recorded: tuple[Path, str], tmp_path: Path) -> None:
    code, output = _run("replay", "zzzz", "--db", str(recorded[0]))
    assert code == 2
    assert "no session" in output
    code, output = _run("sessions", "--db", str(tmp_path / "nope.db"))
    assert code == 2
    assert "no audit database" in output
    assert not (tmp_path / "nope.db").exists()


def test_the_default_database_follows_deskhand_home(tmp_path: Path) -> None:
    assert default_db_path({"DESKHAND_HOME": str(tmp_path)}) == tmp_path / "audit.db"
    assert default_db_path({}) == Path.home() / ".deskhand" / "audit.db"
