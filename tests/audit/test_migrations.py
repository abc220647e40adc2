"""Opening databases written by the previous schema version, and schema drift."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from audit import synthetic
from audit.chain import GENESIS, Head, canonical_json, record_hash, write_head
from audit.errors import SchemaError
from audit.log import AuditLog
from audit.models import SCHEMA_VERSION, Base
from audit.verify import verify

# The schema exactly as deskhand's first release (version 1) wrote it.
V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,
    applied_at FLOAT NOT NULL);
CREATE TABLE ledger (id INTEGER PRIMARY KEY, kind VARCHAR NOT NULL,
    record_table VARCHAR NOT NULL, record_id VARCHAR NOT NULL, body TEXT NOT NULL,
    prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL);
CREATE TABLE sessions (id VARCHAR PRIMARY KEY, task TEXT NOT NULL, planner VARCHAR NOT NULL,
    model VARCHAR NOT NULL, policy_name VARCHAR NOT NULL, policy_sha256 VARCHAR NOT NULL,
    sandbox_kind VARCHAR NOT NULL, sandbox_image VARCHAR NOT NULL,
    screen_width INTEGER NOT NULL, screen_height INTEGER NOT NULL, network BOOLEAN NOT NULL,
    triage TEXT, extra TEXT, pid INTEGER NOT NULL, host VARCHAR NOT NULL,
    started_at FLOAT NOT NULL, ended_at FLOAT, outcome VARCHAR, reason TEXT);
CREATE INDEX ix_sessions_started_at ON sessions (started_at);
CREATE TABLE steps (id INTEGER PRIMARY KEY, session_id VARCHAR NOT NULL REFERENCES sessions (id),
    idx INTEGER NOT NULL, action TEXT, action_type VARCHAR, proposed_raw TEXT,
    validation_error TEXT, decision_effect VARCHAR, rule_ids TEXT, decision_reason TEXT,
    policy_sha256 VARCHAR, secret BOOLEAN NOT NULL, frame_before_sha256 VARCHAR,
    status VARCHAR NOT NULL, created_at FLOAT NOT NULL, output TEXT, error TEXT,
    frame_after_sha256 VARCHAR, timings_ms TEXT, finished_at FLOAT);
CREATE INDEX ix_steps_session_idx ON steps (session_id, idx);
CREATE TABLE approvals (id INTEGER PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
    session_id VARCHAR NOT NULL REFERENCES sessions (id), frame_sha256 VARCHAR NOT NULL,
    summary TEXT NOT NULL, rule_ids TEXT NOT NULL, reason TEXT NOT NULL,
    timeout_s FLOAT NOT NULL, requested_at FLOAT NOT NULL, deadline_at FLOAT NOT NULL,
    status VARCHAR NOT NULL, approved BOOLEAN, scope VARCHAR, approver VARCHAR,
    channel VARCHAR, answered_at FLOAT);
CREATE INDEX ix_approvals_step_id ON approvals (step_id);
CREATE INDEX ix_approvals_status ON approvals (status);
CREATE TABLE events (id INTEGER PRIMARY KEY, session_id VARCHAR NOT NULL REFERENCES sessions (id),
    kind VARCHAR NOT NULL, data TEXT NOT NULL, at FLOAT NOT NULL);
CREATE INDEX ix_events_session_id ON events (session_id);
CREATE TABLE blobs (sha256 VARCHAR PRIMARY KEY, width INTEGER NOT NULL, height INTEGER NOT NULL,
    created_at FLOAT NOT NULL, png BLOB NOT NULL);
"""
JSON_V1 = {"triage", "extra", "action", "proposed_raw", "rule_ids", "output", "timings_ms",
           "data"}


class V1Writer:
    """Writes records the way version 1 did: state row plus chained ledger record."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.head = Head(GENESIS, 0)

    def create(self, kind: str, table: str, key: str, record_id: Any, body: dict[str, Any],
               extra: dict[str, Any] | None = None) -> None:
        row = {key: record_id, **{k: canonical_json(v) if k in JSON_V1 and v is not None else v
                                  for k, v in body.items()}, **(extra or {})}
        self.conn.execute(f"INSERT INTO {table} ({', '.join(row)}) "
                          f"VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))
        self._chain(kind, table, str(record_id), body)

    def update(self, kind: str, table: str, record_id: Any, changes: dict[str, Any]) -> None:
        encoded = {k: canonical_json(v) if k in JSON_V1 and v is not None else v
                   for k, v in changes.items()}
        self.conn.execute(f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in encoded)} "
                          "WHERE id = ?", (*encoded.values(), record_id))
        self._chain(kind, table, str(record_id), changes)

    def _chain(self, kind: str, table: str, record_id: str, body: dict[str, Any]) -> None:
        seq, body_json = self.head.count + 1, canonical_json(body)
        digest = record_hash(prev=self.head.hash, seq=seq, kind=kind, table=table,
                             record_id=record_id, body_json=body_json)
        self.conn.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (seq, kind, table, record_id, body_json, self.head.hash, digest))
        self.head = Head(digest, seq)


def build_v1_database(path: Path) -> dict[str, Any]:
    """A version-1 database with one finished two-step session, as an old deskhand left it."""
    frames = [synthetic.frame(0), synthetic.frame(1)]
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.execute("PRAGMA journal_mode=WAL")
    w = V1Writer(conn)
    now = time.time() - 3600
    w.create("schema.migrate", "schema_version", "version", 1,
             {"name": "initial", "applied_at": now})
    for frame in frames:
        w.create("blob.put", "blobs", "sha256", frame.sha256,
                 {"width": 1280, "height": 800, "created_at": now}, extra={"png": frame.png})
    w.create("session.start", "sessions", "id", "0ldse55i0n", {
        "task": "old task", "planner": "script", "model": "", "policy_name": "default",
        "policy_sha256": "aa" * 32, "sandbox_kind": "local", "sandbox_image": "",
        "screen_width": 1280, "screen_height": 800, "network": False, "triage": None,
        "extra": {}, "pid": 1, "host": "old", "started_at": now, "ended_at": None,
        "outcome": None, "reason": None})
    for index, effect in enumerate(("allow", "ask")):
        w.create("step.intent", "steps", "id", index + 1, {
            "session_id": "0ldse55i0n", "idx": index, "action": {"type": "key", "keys": ["a"]},
            "action_type": "key", "proposed_raw": None, "validation_error": None,
            "decision_effect": effect, "rule_ids": ["r"], "decision_reason": "why",
            "policy_sha256": "aa" * 32, "secret": False,
            "frame_before_sha256": frames[0].sha256, "status": "pending", "created_at": now,
            "finished_at": None})
        w.update("step.result", "steps", index + 1, {
            "status": "done", "output": {}, "error": None,
            "frame_after_sha256": frames[1].sha256, "timings_ms": {"execute_ms": 1.0},
            "finished_at": now})
    w.create("approval.request", "approvals", "id", 1, {
        "step_id": 2, "session_id": "0ldse55i0n", "frame_sha256": frames[0].sha256,
        "summary": "key a", "rule_ids": ["r"], "reason": "why", "timeout_s": 5.0,
        "requested_at": now, "deadline_at": now + 5, "status": "pending", "approved": None,
        "scope": None, "approver": None, "channel": None, "answered_at": None})
    w.update("approval.answer", "approvals", 1, {
        "status": "approved", "approved": True, "scope": "once", "approver": "old@tty",
        "channel": "terminal", "answered_at": now + 1})
    w.create("event", "events", "id", 1,
             {"session_id": "0ldse55i0n", "kind": "note", "data": {"a": 1}, "at": now})
    w.update("session.end", "sessions", "0ldse55i0n",
             {"ended_at": now + 2, "outcome": "done", "reason": "finished"})
    conn.commit()
    conn.close()
    write_head(path, w.head)
    return {"head": w.head, "frames": frames}


def test_the_v1_fixture_verifies_as_it_is(db_path: Path) -> None:
    built = build_v1_database(db_path)
    report = verify(db_path)
    assert report.ok, report.summary()
    assert report.head == built["head"]


def test_a_v1_database_opens_migrated_verified_and_readable(db_path: Path) -> None:
    built = build_v1_database(db_path)
    with AuditLog.open(db_path) as log:
        steps = log.steps("0ldse55i0n")
        session = log.get_session("0ld")
        old_png = log.get_frame_png(built["frames"][1].sha256)
        new_session = synthetic.record_session(log, 2)
    with sqlite3.connect(db_path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert (session.outcome, session.step_count) == ("done", 2)
    assert [s.status for s in steps] == ["done", "done"]
    assert steps[1].approval is not None
    assert steps[1].approval.answer is not None
    assert steps[0].usage is None
    assert steps[0].target_element is None
    assert old_png == built["frames"][1].png
    report = verify(db_path, deep=True)
    assert report.ok, report.summary()
    assert report.records > built["head"].count
    with AuditLog.open(db_path) as log:
        assert log.get_session(new_session).step_count == 2


def test_migrations_build_exactly_the_models_schema(db_path: Path) -> None:
    AuditLog.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        for table in Base.metadata.sorted_tables:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
            assert columns == set(table.columns.keys()), table.name


def test_a_database_from_a_newer_deskhand_is_refused(db_path: Path) -> None:
    AuditLog.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    with pytest.raises(SchemaError, match="upgrade deskhand"):
        AuditLog.open(db_path)


def test_a_foreign_sqlite_file_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(SchemaError, match="not a deskhand audit database"):
        AuditLog.open(db_path)
