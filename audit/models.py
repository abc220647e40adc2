"""The current schema (version 3) as SQLAlchemy typed models.

The tables ``sessions``, ``steps``, ``approvals``, ``events``, ``blobs`` and
``schema_version`` hold the *current state* of each record.  Every change to
them is also appended to ``ledger``, the hash chain: the state tables are what
the ledger's records add up to, and :mod:`audit.verify` checks exactly that.

Columns named in :data:`JSON_COLUMNS` hold canonical JSON text.  Times are
Unix seconds (float).  :mod:`audit.migrations` builds this schema step by
step; a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from audit.columns import JSON_COLUMNS as JSON_COLUMNS
from audit.columns import PRIMARY_KEYS as PRIMARY_KEYS
from audit.columns import UNCHAINED_COLUMNS as UNCHAINED_COLUMNS

SCHEMA_VERSION = 3


class Base(DeclarativeBase):
    """Base of every audit table."""


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    applied_at: Mapped[float] = mapped_column(Float)


class LedgerRecord(Base):
    """One link of the hash chain: a change to one record of a state table."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    record_table: Mapped[str] = mapped_column(String)
    record_id: Mapped[str] = mapped_column(String)
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    task: Mapped[str] = mapped_column(Text)
    planner: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    policy_name: Mapped[str] = mapped_column(String)
    policy_sha256: Mapped[str] = mapped_column(String)
    sandbox_kind: Mapped[str] = mapped_column(String)
    sandbox_image: Mapped[str] = mapped_column(String)
    screen_width: Mapped[int] = mapped_column(Integer)
    screen_height: Mapped[int] = mapped_column(Integer)
    network: Mapped[bool] = mapped_column(Boolean)
    triage: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(Text)


class StepRow(Base):
    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_session_idx", "session_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"))
    idx: Mapped[int] = mapped_column(Integer)
    action: Mapped[str | None] = mapped_column(Text)
    action_type: Mapped[str | None] = mapped_column(String)
    proposed_raw: Mapped[str | None] = mapped_column(Text)
    validation_error: Mapped[str | None] = mapped_column(Text)
    decision_effect: Mapped[str | None] = mapped_column(String)
    rule_ids: Mapped[str | None] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    policy_sha256: Mapped[str | None] = mapped_column(String)
    secret: Mapped[bool] = mapped_column(Boolean)
    frame_before_sha256: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Float)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    frame_after_sha256: Mapped[str | None] = mapped_column(String)
    timings_ms: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[str | None] = mapped_column(Text)  # added in version 2
    target_element: Mapped[str | None] = mapped_column(Text)  # added in version 3


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"))
    frame_sha256: Mapped[str] = mapped_column(String)
    summary: Mapped[str] = mapped_column(Text)
    rule_ids: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    timeout_s: Mapped[float] = mapped_column(Float)
    requested_at: Mapped[float] = mapped_column(Float)
    deadline_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String, index=True)
    approved: Mapped[bool | None] = mapped_column(Boolean)
    scope: Mapped[str | None] = mapped_column(String)
    approver: Mapped[str | None] = mapped_column(String)
    channel: Mapped[str | None] = mapped_column(String)
    answered_at: Mapped[float | None] = mapped_column(Float)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String)
    data: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)


class BlobRow(Base):
    """A screenshot, keyed by the sha256 of the PNG the sandbox produced.

    ``codec`` is ``png`` (``data`` is that PNG, byte for byte) or ``tiles``
    (``data`` holds the tiles that differ from ``base_sha256``); see
    :mod:`audit.frames`.  ``stored_sha256`` is the hash of ``data``;
    ``pixels_sha256`` the hash of the decoded pixels.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String, primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    codec: Mapped[str] = mapped_column(String, server_default="png")
    base_sha256: Mapped[str | None] = mapped_column(String)
    depth: Mapped[int] = mapped_column(Integer, server_default="0")
    mode: Mapped[str | None] = mapped_column(String)
    stored_sha256: Mapped[str | None] = mapped_column(String)
    pixels_sha256: Mapped[str | None] = mapped_column(String)
