"""``deskhand undo SESSION [--to-step N]``: put a live session's files back.

The run that owns the session holds the sandbox; this command asks it, through
the audit database (an ``undo_request`` event, as approvals travel), and waits
for its answer, which the run gives before its next step (agent/undo.py).
A session whose run has ended cannot be undone: its sandbox is gone.

Exit codes: 0 undone; 1 refused (no checkpoint before that step, or it was
skipped; nothing changed) or failed part way; 2 usage (no such session, run not live
or ended before it answered, no answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

EXIT_REFUSED = 1
EXIT_USAGE = 2
ANSWER_TIMEOUT_S = 120.0
POLL_S = 0.2


def register(app: typer.Typer) -> None:
    app.command("undo")(undo_command)


def undo_command(
    session: Annotated[str, typer.Argument(help="A live session's id (or a unique prefix).")],
    to_step: Annotated[int | None, typer.Option(
        "--to-step", help="Restore the files as they were right before step N "
        "[the latest checkpoint].")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Audit database "
                  "[$DESKHAND_HOME/audit.db, ~/.deskhand/audit.db].")] = None,
) -> None:
    """Restore a live session's files to the checkpoint before a step.  Files only: a
    running application's memory and anything sent over the network are not undone."""
    from agent.settings import Settings
    from agent.undo import answer_to, request_undo
    from audit.checkpoints import checkpoints
    from audit.errors import AuditError
    from audit.liveness import SessionLocks
    from audit.log import AuditLog

    path = db if db is not None else Settings().db_path
    if not path.exists():
        _fail(f"no audit database at {path} (give one with --db)")
    try:
        with AuditLog.open(path) as log:
            session_id = log.get_session(session).id
            if SessionLocks(path).owner_is_gone(session_id):
                _fail(f"session {session_id[:12]} is not running: its sandbox is gone, "
                      "so there is nothing to undo")
            taken = [c for c in checkpoints(log, session_id) if c.manifest is not None]
            step = to_step if to_step is not None else (taken[-1].step if taken else -1)
            if step < 0:
                typer.echo(f"session {session_id[:12]} has no checkpoint; nothing was changed")
                raise typer.Exit(EXIT_REFUSED)
            after = max((e.id for e in log.events(session_id)), default=0)
            request_undo(log, session_id, step)
            answer = _wait_for_answer(lambda: answer_to(log, session_id, after),
                                      lambda: SessionLocks(path).owner_is_gone(session_id))
    except AuditError as exc:
        _fail(str(exc))
    typer.echo(answer)
    if not answer.startswith("Undone"):
        raise typer.Exit(EXIT_REFUSED)


def _wait_for_answer(read: Callable[[], str | None], run_is_gone: Callable[[], bool]) -> str:
    """The run's answer; fails at once when the run ends without one (a run that ends
    between the request and its next step never serves it)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = read()
        if answer is not None:
            return answer
        if run_is_gone():
            answer = read()  # it may have answered just before it ended
            if answer is not None:
                return answer
            _fail("the run ended before it served the undo: its sandbox is gone, "
                  "so there is nothing to undo")
        time.sleep(POLL_S)
    _fail(f"the run did not answer within {ANSWER_TIMEOUT_S:g} s (it serves undo "
          "between steps; is it waiting on something?)")
    raise AssertionError  # unreachable


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE)
