"""``deskhand audit verify|head``, ``deskhand sessions``, ``replay`` and ``export``.

The database defaults to ``~/.deskhand/audit.db``, or ``$DESKHAND_HOME/audit.db``;
the environment is read here, once, and nowhere deeper.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from audit.chain import Head
from audit.errors import AuditError
from audit.records import SessionRecord

if TYPE_CHECKING:  # SQLAlchemy loads with the commands that open the log
    from audit.log import AuditLog
    from sandbox.base import Sandbox, Size

EXIT_TAMPERED = 1
EXIT_USAGE = 2

DbOption = Annotated[Path | None, typer.Option("--db", help="Audit database "
                                               "[$DESKHAND_HOME/audit.db, ~/.deskhand/audit.db].")]


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$DESKHAND_HOME/audit.db``, else ``~/.deskhand/audit.db``."""
    env = os.environ if environ is None else environ
    home = env.get("DESKHAND_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".deskhand") / "audit.db"


def _existing_db(db: Path | None) -> Path:
    path = db if db is not None else default_db_path()
    if not path.exists():
        _fail(f"no audit database at {path} (give one with --db)")
    return path


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    if os.environ.get("DESKHAND_DEBUG") and sys.exc_info()[0] is not None:
        traceback.print_exc()  # `deskhand --debug`: the failure behind the line
    Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _open(db: Path | None) -> AuditLog:
    """The log, opened read-only: reading commands never write (and work on read-only media)."""
    from audit.log import AuditLog

    try:
        return AuditLog.open_read_only(_existing_db(db))
    except AuditError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail always exits


# -- audit verify / head ---------------------------------------------------------

def verify_command(
    db: DbOption = None,
    head: Annotated[str | None, typer.Option("--head", help="Check against this HASH:COUNT "
                                             "instead of the sidecar beside the database.")] = None,
    deep: Annotated[bool, typer.Option(help="Also decode every frame and check its "
                                       "pixels.")] = False,
) -> None:
    """Check the hash chain, the tables and the head checkpoint; exit 1 if tampered."""
    from audit.verify import verify

    path = _existing_db(db)
    try:
        checkpoint = Head.parse(head) if head else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--head") from None
    try:
        report = verify(path, checkpoint, deep=deep)
    except AuditError as exc:
        _fail(str(exc))
        return
    except sqlite3.DatabaseError as exc:
        _fail(f"{path}: not a readable audit database ({exc})")
        return
    console = Console(highlight=False)
    console.print(escape(report.summary()), soft_wrap=True)
    for problem in report.problems[1:6]:
        console.print(f"  also: {escape(str(problem))}", soft_wrap=True)
    if not report.ok:
        raise typer.Exit(EXIT_TAMPERED)


def head_command(db: DbOption = None) -> None:
    """Print the chain's head as HASH:COUNT, to keep somewhere else."""
    from audit.readonly import connect_read_only

    path = _existing_db(db)
    try:
        conn = connect_read_only(path)
        try:
            row = conn.execute("SELECT hash, id FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            conn.close()
    except AuditError as exc:
        _fail(str(exc))
        return
    except sqlite3.DatabaseError as exc:
        _fail(f"{path}: not a readable audit database ({exc})")
        return
    typer.echo(str(Head(row[0], row[1]) if row else Head("0" * 64, 0)))


# -- sessions --------------------------------------------------------------------

def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-11-28 or "
                                 "2026-11-28T14:30", param_hint=option) from None
    return moment if moment.tzinfo else moment.astimezone()


def session_line(session: SessionRecord) -> str:
    """One line per session: id, start, outcome, steps, duration, task."""
    started = datetime.fromtimestamp(session.started_at, UTC).astimezone()
    took = f"{session.duration_s:.1f}s" if session.duration_s is not None else "-"
    task = session.task if len(session.task) <= 60 else session.task[:57] + "..."
    return (f"{session.id[:12]}  {started:%Y-%m-%d %H:%M}  {session.outcome or 'running':<11} "
            f"{session.step_count:>4} steps  {took:>7}  {task}")


def sessions_command(
    db: DbOption = None,
    outcome: Annotated[str | None, typer.Option(help="done, failed, denied, interrupted, "
                                                "error, budget or running.")] = None,
    since: Annotated[str | None, typer.Option(help="Started at or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before (ISO date).")] = None,
    grep: Annotated[str | None, typer.Option(help="Text in the task or the reason.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List recorded sessions, newest first, one line each."""
    from audit.catalog import OUTCOME_FILTERS, list_sessions

    if outcome is not None and outcome not in OUTCOME_FILTERS:
        raise typer.BadParameter(f"{outcome!r} is not an outcome; choose one of "
                                 f"{', '.join(OUTCOME_FILTERS)}", param_hint="--outcome")
    path = _existing_db(db)
    try:
        found = list_sessions(path, outcome=outcome, since=_moment(since, "--since"),
                              until=_moment(until, "--until"), text=grep, limit=limit)
    except AuditError as exc:
        _fail(str(exc))
        return
    for session in found:
        typer.echo(session_line(session))
    if not found:
        typer.echo("no sessions match", err=True)


# -- replay / export ---------------------------------------------------------------

def replay_command(
    session: Annotated[str, typer.Argument(help="Session id or a unique prefix of it.")],
    db: DbOption = None,
    rerun: Annotated[bool, typer.Option(help="Run the executed actions again on a fresh "
                                        "sandbox and compare frames.")] = False,
    sandbox: Annotated[str, typer.Option(help="For --rerun: local or docker.")] = "local",
) -> None:
    """Step through a session (n/p/q), or print every step when not on a terminal."""
    from audit.replay import TerminalReplay, raw_keys

    with _open(db) as log:
        try:
            replay = TerminalReplay(log, session, Console(highlight=False))
        except AuditError as exc:
            _fail(str(exc))
            return
        if rerun:
            _rerun(log, replay.session, sandbox)
        elif sys.stdin.isatty() and sys.stdout.isatty():
            with raw_keys() as read_key:
                replay.interactive(read_key)
        else:
            replay.print_all()


def _rerun(log: AuditLog, session: SessionRecord, kind: str) -> None:
    from audit.replay import rerun
    from sandbox.base import Size

    if kind not in {"local", "docker"}:
        raise typer.BadParameter("choose local or docker", param_hint="--sandbox")
    if _front_end.open_sandbox is None:
        raise typer.BadParameter("this front end runs no sandboxes", param_hint="--rerun")
    size = Size(session.screen_width, session.screen_height)
    with _front_end.open_sandbox(kind, size) as box:
        diffs = rerun(log, session.id, box)
    for diff in diffs:
        verdict = f"skipped: {diff.skipped}" if diff.skipped else (
            f"{diff.changed_share:6.2%} pixels differ, mean |diff| {diff.mean_abs_diff:.2f}")
        typer.echo(f"#{diff.index:<4} {diff.action:<40} {verdict}")


def export_command(
    session: Annotated[str, typer.Argument(help="Session id or a unique prefix of it.")],
    db: DbOption = None,
    html: Annotated[Path | None, typer.Option(help="Write one self-contained HTML file.")] = None,
    gif: Annotated[Path | None, typer.Option(help="Write an animated GIF.")] = None,
) -> None:
    """Export a session as a self-contained HTML page or an animated GIF."""
    from audit.export import export_gif, export_html

    if (html is None) == (gif is None):
        raise typer.BadParameter("give exactly one of --html FILE or --gif FILE")
    target = html or gif
    assert target is not None
    if not target.parent.is_dir():
        _fail(f"cannot write {target}: the folder {target.parent} does not exist")
    with _open(db) as log:
        try:
            stats = export_html(log, session, html) if html else \
                export_gif(log, session, gif)  # type: ignore[arg-type]
        except (AuditError, ValueError) as exc:
            _fail(str(exc))
            return
        except OSError as exc:
            _fail(f"cannot write {target}: {exc.strerror or exc}")
            return
    typer.echo(f"wrote {stats.path} ({stats.bytes / 1e6:.2f} MB, {stats.steps} steps, "
               f"{stats.frames} frames)")


SandboxOpener = Callable[[str, "Size"], "Sandbox"]


@dataclass(slots=True)
class _FrontEnd:
    """What the front end that registered these commands lends them."""

    open_sandbox: SandboxOpener | None = None


_front_end = _FrontEnd()


def register(app: typer.Typer, *, open_sandbox: SandboxOpener | None = None) -> None:
    """Add the audit commands to the ``deskhand`` app.

    ``open_sandbox(kind, size)`` builds the fresh sandbox ``replay --rerun``
    runs on; the audit package builds none itself (it sits below the wiring).
    """
    _front_end.open_sandbox = open_sandbox
    audit_app = typer.Typer(help="Check the audit log's integrity.", no_args_is_help=True)
    audit_app.command("verify")(verify_command)
    audit_app.command("head")(head_command)
    app.add_typer(audit_app, name="audit")
    app.command("sessions")(sessions_command)
    app.command("replay")(replay_command)
    app.command("export")(export_command)
