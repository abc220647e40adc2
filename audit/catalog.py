"""The list of recorded sessions, read with plain sqlite3 and read-only.

``deskhand sessions`` must start at once and work on a log that lies on
read-only media, so it reads here rather than through SQLAlchemy
(:mod:`audit.reader` answers the same question for an open
:class:`~audit.log.AuditLog`).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from audit.errors import AuditStorageError
from audit.readonly import connect_read_only
from audit.records import Outcome, SessionRecord

# What `--outcome` may name: how sessions end, and ``running`` for open ones.
OUTCOME_FILTERS: tuple[str, ...] = (*get_args(Outcome), "running")

_COLUMNS = ("id", "task", "planner", "model", "policy_name", "policy_sha256", "sandbox_kind",
            "sandbox_image", "screen_width", "screen_height", "network", "triage", "extra",
            "pid", "host", "started_at", "ended_at", "outcome", "reason")


def list_sessions(path: Path, *, outcome: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  text: str | None = None, limit: int | None = 50) -> list[SessionRecord]:
    """Sessions, newest first; ``outcome="running"`` selects those not ended."""
    if outcome is not None and outcome not in OUTCOME_FILTERS:
        raise ValueError(f"unknown outcome {outcome!r} (choose {', '.join(OUTCOME_FILTERS)})")
    where, params = _filters(outcome, since, until, text)
    sql = (f"SELECT {', '.join('s.' + c for c in _COLUMNS)}, "
           "(SELECT count(*) FROM steps WHERE steps.session_id = s.id) "
           f"FROM sessions s {where} ORDER BY s.started_at DESC")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    conn = connect_read_only(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise AuditStorageError(f"audit database {path}: {exc}") from None
    finally:
        conn.close()
    return [_record(row) for row in rows]


def _filters(outcome: str | None, since: datetime | None, until: datetime | None,
             text: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if outcome == "running":
        clauses.append("s.ended_at IS NULL")
    elif outcome is not None:
        clauses.append("s.outcome = ?")
        params.append(outcome)
    if since is not None:
        clauses.append("s.started_at >= ?")
        params.append(since.timestamp())
    if until is not None:
        clauses.append("s.started_at < ?")
        params.append(until.timestamp())
    if text:
        clauses.append("(s.task LIKE ? OR s.reason LIKE ? OR s.id LIKE ?)")
        params += [f"%{text}%"] * 3
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: tuple[Any, ...]) -> SessionRecord:
    values = dict(zip(_COLUMNS, row, strict=False))
    values["network"] = bool(values["network"])
    values["triage"] = _json(values["triage"])
    values["extra"] = _json(values["extra"]) or {}
    return SessionRecord(**values, step_count=int(row[-1]))


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
