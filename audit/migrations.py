"""Named, ordered schema migrations, recorded in ``schema_version`` and in the chain.

Each migration runs in its own write transaction and appends a
``schema.migrate`` record to the ledger, so an upgraded database still
verifies.  Migrations are the source of truth for the schema; the models in
:mod:`audit.models` describe the result of the last one.

    1 initial                 sessions, steps, approvals, events, PNG blobs, ledger
    2 frame_codecs_and_usage  token usage per step; blobs stored as PNG or tile deltas
    3 step_target_element     the element a click aims at (role, name, box, source)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from audit import store
from audit.errors import SchemaError
from audit.frames import keyframe, open_png
from audit.models import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


_V1_TABLES = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at FLOAT NOT NULL)""",
    """CREATE TABLE ledger (
        id INTEGER PRIMARY KEY, kind VARCHAR NOT NULL, record_table VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL, body TEXT NOT NULL, prev_hash VARCHAR NOT NULL,
        hash VARCHAR NOT NULL)""",
    """CREATE TABLE sessions (
        id VARCHAR PRIMARY KEY, task TEXT NOT NULL, planner VARCHAR NOT NULL,
        model VARCHAR NOT NULL, policy_name VARCHAR NOT NULL, policy_sha256 VARCHAR NOT NULL,
        sandbox_kind VARCHAR NOT NULL, sandbox_image VARCHAR NOT NULL,
        screen_width INTEGER NOT NULL, screen_height INTEGER NOT NULL,
        network BOOLEAN NOT NULL, triage TEXT, extra TEXT, pid INTEGER NOT NULL,
        host VARCHAR NOT NULL, started_at FLOAT NOT NULL, ended_at FLOAT, outcome VARCHAR,
        reason TEXT)""",
    "CREATE INDEX ix_sessions_started_at ON sessions (started_at)",
    """CREATE TABLE steps (
        id INTEGER PRIMARY KEY, session_id VARCHAR NOT NULL REFERENCES sessions (id),
        idx INTEGER NOT NULL, action TEXT, action_type VARCHAR, proposed_raw TEXT,
        validation_error TEXT, decision_effect VARCHAR, rule_ids TEXT, decision_reason TEXT,
        policy_sha256 VARCHAR, secret BOOLEAN NOT NULL, frame_before_sha256 VARCHAR,
        status VARCHAR NOT NULL, created_at FLOAT NOT NULL, output TEXT, error TEXT,
        frame_after_sha256 VARCHAR, timings_ms TEXT, finished_at FLOAT)""",
    "CREATE INDEX ix_steps_session_idx ON steps (session_id, idx)",
    """CREATE TABLE approvals (
        id INTEGER PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
        session_id VARCHAR NOT NULL REFERENCES sessions (id), frame_sha256 VARCHAR NOT NULL,
        summary TEXT NOT NULL, rule_ids TEXT NOT NULL, reason TEXT NOT NULL,
        timeout_s FLOAT NOT NULL, requested_at FLOAT NOT NULL, deadline_at FLOAT NOT NULL,
        status VARCHAR NOT NULL, approved BOOLEAN, scope VARCHAR, approver VARCHAR,
        channel VARCHAR, answered_at FLOAT)""",
    "CREATE INDEX ix_approvals_step_id ON approvals (step_id)",
    "CREATE INDEX ix_approvals_status ON approvals (status)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY, session_id VARCHAR NOT NULL REFERENCES sessions (id),
        kind VARCHAR NOT NULL, data TEXT NOT NULL, at FLOAT NOT NULL)""",
    "CREATE INDEX ix_events_session_id ON events (session_id)",
    """CREATE TABLE blobs (
        sha256 VARCHAR PRIMARY KEY, width INTEGER NOT NULL, height INTEGER NOT NULL,
        created_at FLOAT NOT NULL, png BLOB NOT NULL)""",
)


def _initial(conn: Connection) -> None:
    for statement in _V1_TABLES:
        conn.exec_driver_sql(statement)


_V2_CHANGES = (
    "ALTER TABLE steps ADD COLUMN usage TEXT",
    "ALTER TABLE blobs RENAME COLUMN png TO data",
    "ALTER TABLE blobs ADD COLUMN codec VARCHAR NOT NULL DEFAULT 'png'",
    "ALTER TABLE blobs ADD COLUMN base_sha256 VARCHAR",
    "ALTER TABLE blobs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE blobs ADD COLUMN mode VARCHAR",
    "ALTER TABLE blobs ADD COLUMN stored_sha256 VARCHAR",
    "ALTER TABLE blobs ADD COLUMN pixels_sha256 VARCHAR",
)


def _frame_codecs_and_usage(conn: Connection) -> None:
    for statement in _V2_CHANGES:
        conn.exec_driver_sql(statement)
    blobs = conn.exec_driver_sql("SELECT sha256, data FROM blobs ORDER BY rowid").all()
    for sha256, png in blobs:
        stored = keyframe(png, open_png(png))
        store.update(conn, kind="blob.migrate", table="blobs", record_id=sha256, changes={
            "codec": "png", "base_sha256": None, "depth": 0, "mode": stored.mode,
            "stored_sha256": stored.stored_sha256, "pixels_sha256": stored.pixels_sha256,
        })


def _step_target_element(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE steps ADD COLUMN target_element TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _initial),
    Migration(2, "frame_codecs_and_usage", _frame_codecs_and_usage),
    Migration(3, "step_target_element", _step_target_element),
)
assert MIGRATIONS[-1].version == SCHEMA_VERSION


def current_version(conn: Connection) -> int:
    """The schema version of the open database; 0 for an empty file."""
    tables = {row[0] for row in
              conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            names = ", ".join(sorted(tables))
            raise SchemaError(f"not a deskhand audit database (tables: {names})")
        return 0
    return int(store.scalar(conn, "SELECT max(version) FROM schema_version") or 0)


def migrate(engine: Engine) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; returns how many migrations ran."""
    ran = 0
    for migration in MIGRATIONS:
        with store.writer(engine).begin() as conn:
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaError(f"the audit database has schema version {version}; this "
                                  f"deskhand knows up to {SCHEMA_VERSION}: upgrade deskhand")
            if version >= migration.version:
                continue
            migration.apply(conn)
            store.create(conn, kind="schema.migrate", table="schema_version",
                         record_id=migration.version,
                         body={"name": migration.name, "applied_at": time.time()})
            ran += 1
    return ran
