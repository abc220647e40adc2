"""The audit log: every step written, chained and committed before it runs.

    with AuditLog.open(path, redact=[api_key]) as log:
        session = log.start_session(info)
        step = log.record_intent(session, index=0, action=..., ...)   # committed: 'pending'
        ...                                                          # the sandbox runs it
        log.record_result(step, status="done", ...)

Each write is one ``BEGIN IMMEDIATE`` transaction that changes a state table
and appends the matching ledger record (:mod:`audit.store`); after it
commits, the head checkpoint beside the database is replaced.  Approvals are
rows that any process attached to the same file may answer; the first
answer wins.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image
from sqlalchemy import Connection, Engine, create_engine

from audit import framestore, reader, store
from audit.chain import Head, HeadFile, head_path, read_head
from audit.errors import AuditStateError, AuditStorageError, HeadMismatch, NotFound, SchemaError
from audit.liveness import SessionLocks
from audit.migrations import current_version, migrate
from audit.models import SCHEMA_VERSION
from audit.readonly import can_write_beside, check_is_database, read_only_uri
from audit.records import (
    ApprovalAnswer,
    ApprovalRecord,
    ApprovalRequest,
    EventRecord,
    Outcome,
    ResultStatus,
    Scope,
    SessionInfo,
    SessionRecord,
    StepRecord,
    Usage,
)
from audit.scrub import Scrubber, jsonable, mask_action
from policies.decision import Decision, TargetElement
from policies.detectors import secret_parts
from sandbox.actions import Action, TypeText
from sandbox.base import Frame

INTERRUPTED_STEP = "the run stopped before this step finished"
INTERRUPTED_SESSION = "the run stopped without ending its session (the process died)"


class _Writes:
    """One write transaction: creates and updates, scrubbed, each chained."""

    def __init__(self, conn: Connection, scrubber: Scrubber) -> None:
        self.conn = conn
        self.head: Head | None = None
        self._scrubber = scrubber

    def create(self, kind: str, table: str, body: Mapping[str, Any],
               record_id: str | None = None) -> int | str:
        new_id, self.head = store.create(self.conn, kind=kind, table=table,
                                         body=self._scrubber.body(body), record_id=record_id)
        return new_id

    def update(self, kind: str, table: str, record_id: int | str,
               changes: Mapping[str, Any]) -> None:
        self.head = store.update(self.conn, kind=kind, table=table, record_id=record_id,
                                 changes=self._scrubber.body(changes))

    def value(self, sql: str, *params: Any) -> Any:
        return store.scalar(self.conn, sql, *params)


class AuditLog:
    """A tamper-evident, replayable log in one SQLite file.  Open it with :meth:`open`."""

    def __init__(self, engine: Engine, *, path: Path, redact: Sequence[str] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._engine = engine
        self._writer = store.writer(engine)
        self._scrubber = Scrubber(secret for secret in redact if secret)
        self._frames = framestore.FrameStore(engine)
        self._locks = SessionLocks(path)
        self._write_lock = threading.Lock()
        self._head_file: HeadFile | None = None
        self._closed = False
        self._read_only = False

    @classmethod
    def open(cls, path: Path, *, redact: Sequence[str] = (),
             engine: Engine | None = None, clock: Callable[[], float] = time.time) -> AuditLog:
        """Create or upgrade the database at ``path`` and close what dead runs left open.

        ``engine`` defaults to :func:`audit.store.make_engine` of ``path``.
        Raises :class:`HeadMismatch` when the head checkpoint beside the file is
        not on the database's chain (the file was cut short or rewritten).
        """
        path = Path(path)
        _check_writable(path)
        if not path.exists():
            _set_aside_orphaned_head(path)
        engine = engine if engine is not None else store.make_engine(path)
        with store.translated(path):
            migrate(engine)
            log = cls(engine, path=path, redact=redact, clock=clock)
            log._check_head_checkpoint()
            log._write_head()
            log.recover_dead_runs()
        return log

    @classmethod
    def open_read_only(cls, path: Path) -> AuditLog:
        """Open an existing database to read it, writing nothing — not even WAL files
        on read-only media (:mod:`audit.readonly`).  Every write raises
        :class:`AuditStateError`; the schema must be the current one.
        """
        path = Path(path)
        check_is_database(path)
        uri = read_only_uri(path)
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False))
        with store.translated(path), engine.connect() as conn:
            version = current_version(conn)
        if version != SCHEMA_VERSION:
            engine.dispose()
            raise SchemaError(f"{path} has schema version {version}, this deskhand reads "
                              f"{SCHEMA_VERSION}; open it once where it can be written "
                              "(any `deskhand run` or `deskhand tui`) to upgrade it")
        log = cls(engine, path=path)
        log._read_only = True
        return log

    def close(self) -> None:
        """Release this process's session locks and the database."""
        if self._closed:
            return
        self._closed = True
        self._locks.release_all()
        if self._head_file is not None:
            self._head_file.close()
        self._engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the chain's head ---------------------------------------------------------

    def head(self) -> Head:
        """The last record's hash and the record count, as committed now."""
        with store.translated(self.path), self._engine.connect() as conn:
            return store.last_head(conn)

    def _check_head_checkpoint(self) -> None:
        try:
            checkpoint = read_head(self.path)
        except ValueError as exc:
            raise HeadMismatch(f"{exc}; run `deskhand audit verify --db {self.path}`") from None
        if checkpoint is None or checkpoint.count == 0:
            return
        with self._engine.connect() as conn:
            at = store.scalar(conn, "SELECT hash FROM ledger WHERE id = ?", checkpoint.count)
        if at != checkpoint.hash:
            raise HeadMismatch(
                f"{self.path}: the head checkpoint {checkpoint} is not on this database's "
                f"chain (cut short or rewritten). Run `deskhand audit verify --db {self.path}`; "
                f"to start over, move {self.path.name}.head aside.")

    def _write_head(self, head: Head | None = None) -> None:
        if self._head_file is None:
            self._head_file = HeadFile(self.path)
        self._head_file.write(head or self.head())

    @contextmanager
    def _transaction(self) -> Iterator[_Writes]:
        if self._closed:
            raise AuditStateError(f"the audit log {self.path} is closed")
        if self._read_only:
            raise AuditStateError(f"the audit log {self.path} is open read-only")
        with store.translated(self.path), self._write_lock:
            with self._writer.begin() as conn:
                writes = _Writes(conn, self._scrubber)
                yield writes
            if writes.head is not None:
                self._write_head(writes.head)

    # -- sessions -----------------------------------------------------------------

    def start_session(self, info: SessionInfo) -> str:
        """Record a new session; this process holds it until :meth:`end_session`."""
        session_id = uuid.uuid4().hex
        self._locks.hold(session_id)
        body = {
            "task": info.task, "planner": info.planner, "model": info.model,
            "policy_name": info.policy_name, "policy_sha256": info.policy_sha256,
            "sandbox_kind": info.sandbox_kind, "sandbox_image": info.sandbox_image,
            "screen_width": info.screen_width, "screen_height": info.screen_height,
            "network": bool(info.network), "triage": jsonable(info.triage),
            "extra": jsonable(info.extra or {}), "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": self._clock(), "ended_at": None, "outcome": None, "reason": None,
        }
        with self._transaction() as tx:
            tx.create("session.start", "sessions", body, record_id=session_id)
        return session_id

    def end_session(self, session_id: str, *, outcome: Outcome, reason: str) -> None:
        """Close a session with how it ended.

        Nothing of an ended session runs any more, so in the same transaction
        every step still ``pending`` is closed ``interrupted`` (with ``reason``)
        and every approval still ``pending`` expires.  A stop that lands just
        after a step's intent was committed, before its id reached the code
        that would close it, leaves such a step.
        """
        now = self._clock()
        with self._transaction() as tx:
            if tx.value("SELECT ended_at FROM sessions WHERE id = ?", session_id) is not None:
                raise AuditStateError(f"session {session_id} has already ended")
            _close_what_is_open(tx, session_id, now,
                                step_error=f"the session ended before this step finished "
                                           f"({reason})")
            tx.update("session.end", "sessions", session_id,
                      {"ended_at": now, "outcome": outcome, "reason": reason})
        self._locks.release(session_id)

    def recover_dead_runs(self) -> list[str]:
        """Mark what runs that died left open as interrupted; returns their session ids."""
        with store.translated(self.path), self._engine.connect() as conn:
            open_ids = [row[0] for row in
                        conn.exec_driver_sql("SELECT id FROM sessions WHERE ended_at IS NULL")]
        dead = [sid for sid in open_ids if self._locks.owner_is_gone(sid)]
        recovered = [sid for sid in dead if self._interrupt_session(sid)]
        for session_id in dead:
            self._locks.forget(session_id)
        return recovered

    def _interrupt_session(self, session_id: str) -> bool:
        now = self._clock()
        with self._transaction() as tx:
            if tx.value("SELECT ended_at FROM sessions WHERE id = ?", session_id) is not None:
                return False
            _close_what_is_open(tx, session_id, now, step_error=INTERRUPTED_STEP)
            tx.update("session.end", "sessions", session_id,
                      {"ended_at": now, "outcome": "interrupted", "reason": INTERRUPTED_SESSION})
        return True

    # -- steps --------------------------------------------------------------------

    def record_intent(self, session_id: str, *, index: int, action: Action | None,
                      proposed_raw: object, validation_error: str | None,
                      decision: Decision | None, frame_before_sha256: str | None,
                      secret: bool, target_element: TargetElement | None = None) -> int:
        """Commit a step before anything runs; returns its id.

        The step is ``pending`` when it may still run, or already final:
        ``invalid`` (validation failed) or ``denied`` (the policy said no).
        Secret typed text is stored masked.  ``target_element`` is the element
        a click aims at, as the policy was told.
        """
        secret = secret or bool(decision and decision.secret)
        body = _intent_body(session_id, index, action, proposed_raw, validation_error,
                            decision, frame_before_sha256, secret, now=self._clock())
        if target_element is not None:
            body["target_element"] = target_element.as_json()
        if secret and isinstance(action, TypeText):
            for part in secret_parts(action.text):
                self._scrubber.add(part)
        with self._transaction() as tx:
            return int(tx.create("step.intent", "steps", body))

    def record_result(self, step_id: int, *, status: ResultStatus, output: dict[str, Any],
                      error: str | None, frame_after_sha256: str | None,
                      timings_ms: dict[str, float], usage: Usage | None = None) -> None:
        """Close a pending step with what happened."""
        changes = {
            "status": status, "output": jsonable(output), "error": error,
            "frame_after_sha256": frame_after_sha256, "timings_ms": jsonable(timings_ms),
            "usage": None if usage is None else asdict(usage), "finished_at": self._clock(),
        }
        with self._transaction() as tx:
            current = tx.value("SELECT status FROM steps WHERE id = ?", step_id)
            if current != "pending":
                raise AuditStateError(f"step {step_id} is {current or 'missing'}, not pending")
            tx.update("step.result", "steps", step_id, changes)

    def record_network_step(self, session_id: str, *, request: dict[str, Any],
                            rule_ids: Sequence[str], reason: str) -> int:
        """Commit a step that stands for a connection the desktop wants (no action, no
        frame), so that a human can be asked about it like any step; it is ``pending``
        until :meth:`record_result` closes it."""
        with self._transaction() as tx:
            index = tx.value("SELECT COALESCE(MAX(idx) + 1, 0) FROM steps WHERE session_id = ?",
                             session_id)
            now = self._clock()
            body = {
                "session_id": session_id, "idx": int(index), "action": None,
                "action_type": "network", "proposed_raw": jsonable({"network": request}),
                "validation_error": None, "decision_effect": "ask", "rule_ids": list(rule_ids),
                "decision_reason": reason, "policy_sha256": None, "secret": False,
                "frame_before_sha256": None, "status": "pending", "created_at": now,
                "finished_at": None,
            }
            return int(tx.create("step.intent", "steps", body))

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        """Record something that happened in a session besides its steps."""
        body = {"session_id": session_id, "kind": kind, "data": jsonable(data),
                "at": self._clock()}
        with self._transaction() as tx:
            tx.create("event", "events", body)

    # -- frames -------------------------------------------------------------------

    def put_frame(self, frame: Frame) -> str:
        """Store a screenshot once (by its PNG's sha256); returns that hash."""
        with store.translated(self.path), self._engine.connect() as conn:
            encoded = self._frames.prepare(conn, frame)
        if encoded is not None:
            with self._transaction() as tx:
                tx.head = self._frames.insert(tx.conn, frame.sha256, encoded)
        return frame.sha256

    def get_frame_png(self, sha256: str) -> bytes:
        """A PNG whose pixels are exactly those of the stored frame."""
        with store.translated(self.path):
            return self._frames.png(sha256)

    def get_frame_image(self, sha256: str) -> Image.Image:
        """The stored frame's pixels (shared: copy before drawing on it)."""
        with store.translated(self.path):
            return self._frames.image(sha256)

    def has_frame(self, sha256: str) -> bool:
        with store.translated(self.path), self._engine.connect() as conn:
            return store.scalar(conn, "SELECT 1 FROM blobs WHERE sha256 = ?", sha256) is not None

    # -- approvals ----------------------------------------------------------------

    def request_approval(self, step_id: int, *, frame_sha256: str, summary: str,
                         rule_ids: Sequence[str], reason: str, timeout_s: float) -> int:
        """Ask for a human answer to a pending step; returns the approval id."""
        now = self._clock()
        with self._transaction() as tx:
            session_id = tx.value("SELECT session_id FROM steps WHERE id = ?", step_id)
            if session_id is None:
                raise NotFound(f"no step {step_id}")
            body = {
                "step_id": step_id, "session_id": session_id, "frame_sha256": frame_sha256,
                "summary": summary, "rule_ids": list(rule_ids), "reason": reason,
                "timeout_s": timeout_s, "requested_at": now, "deadline_at": now + timeout_s,
                "status": "pending", "approved": None, "scope": None, "approver": None,
                "channel": None, "answered_at": None,
            }
            return int(tx.create("approval.request", "approvals", body))

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool:
        """Answer an approval; False when it was already answered or has expired."""
        now = self._clock()
        with self._transaction() as tx:
            row = tx.conn.exec_driver_sql("SELECT status, deadline_at FROM approvals WHERE id = ?",
                                          (approval_id,)).first()
            if row is None:
                raise NotFound(f"no approval {approval_id}")
            if row[0] != "pending":
                return False
            if now > row[1]:
                tx.update("approval.expire", "approvals", approval_id, {"status": "expired"})
                return False
            tx.update("approval.answer", "approvals", approval_id, {
                "status": "approved" if approved else "denied", "approved": approved,
                "scope": scope, "approver": approver, "channel": channel, "answered_at": now,
            })
            return True

    def wait_for_answer(self, approval_id: int, *, timeout_s: float,
                        poll_s: float = 0.05) -> ApprovalAnswer | None:
        """The answer, or None if none came within ``timeout_s`` (the caller then denies).

        A wait that times out closes the request as expired.  A zero-timeout
        poll only does so once the request's own deadline has passed, so
        polling never takes the question away from other approvers.
        """
        give_up = time.monotonic() + timeout_s
        while True:
            record = self.approval(approval_id)
            if record.status != "pending":
                return record.answer
            if time.monotonic() >= give_up:
                break
            time.sleep(max(0.0, min(poll_s, give_up - time.monotonic())))
        if timeout_s > 0 or self._clock() >= record.deadline_at:
            return self._expire(approval_id)
        return None

    def _expire(self, approval_id: int) -> ApprovalAnswer | None:
        """Close a pending approval as expired; returns an answer that beat us to it."""
        with self._transaction() as tx:
            status = tx.value("SELECT status FROM approvals WHERE id = ?", approval_id)
            if status == "pending":
                tx.update("approval.expire", "approvals", approval_id, {"status": "expired"})
                return None
        return self.approval(approval_id).answer

    def approval(self, approval_id: int) -> ApprovalRecord:
        """One approval, answered or not."""
        with store.translated(self.path):
            return reader.approval(self._engine, approval_id)

    def pending_approvals(self, session_id: str | None = None) -> list[ApprovalRequest]:
        """Approvals still waiting for an answer, oldest first."""
        now = self._clock()
        with store.translated(self.path):
            waiting = reader.approvals(self._engine, session_id, statuses=["pending"])
        return [ApprovalRequest(id=a.id, step_id=a.step_id, session_id=a.session_id,
                                frame_sha256=a.frame_sha256, summary=a.summary,
                                rule_ids=a.rule_ids, reason=a.reason,
                                requested_at=a.requested_at, deadline_at=a.deadline_at)
                for a in waiting if a.deadline_at > now]

    # -- reading ------------------------------------------------------------------

    def list_sessions(self, *, outcome: str | None = None, since: datetime | float | None = None,
                      until: datetime | float | None = None, text: str | None = None,
                      limit: int | None = 50) -> list[SessionRecord]:
        """Sessions, newest first, filtered by outcome, start time and text."""
        with store.translated(self.path):
            return reader.list_sessions(self._engine, outcome=outcome, since=since,
                                        until=until, text=text, limit=limit)

    def get_session(self, id_or_prefix: str) -> SessionRecord:
        """A session by id or unique id prefix."""
        with store.translated(self.path):
            return reader.get_session(self._engine, id_or_prefix)

    def steps(self, session_id: str) -> list[StepRecord]:
        with store.translated(self.path):
            return reader.steps(self._engine, session_id)

    def approvals(self, session_id: str) -> list[ApprovalRecord]:
        with store.translated(self.path):
            return reader.approvals(self._engine, session_id)

    def events(self, session_id: str) -> list[EventRecord]:
        with store.translated(self.path):
            return reader.events(self._engine, session_id)


def _close_what_is_open(tx: _Writes, session_id: str, now: float, *, step_error: str) -> None:
    """Close the session's pending steps as interrupted and expire its pending approvals."""
    for (step_id,) in tx.conn.exec_driver_sql(
            "SELECT id FROM steps WHERE session_id = ? AND status = 'pending' "
            "ORDER BY id", (session_id,)).all():
        tx.update("step.interrupted", "steps", step_id,
                  {"status": "interrupted", "error": step_error, "finished_at": now})
    for (approval_id,) in tx.conn.exec_driver_sql(
            "SELECT id FROM approvals WHERE session_id = ? AND status = 'pending' "
            "ORDER BY id", (session_id,)).all():
        tx.update("approval.expire", "approvals", approval_id, {"status": "expired"})


def _check_writable(path: Path) -> None:
    """AuditStorageError naming ``path`` when the log cannot be written there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditStorageError(f"cannot create the folder of the audit log {path}: "
                                f"{exc.strerror or exc}") from None
    if path.exists():
        check_is_database(path)
    if not can_write_beside(path):
        where = path if path.exists() and not os.access(path, os.W_OK) else path.parent
        raise AuditStorageError(f"cannot write the audit log {path}: {where} is read-only "
                                "(`deskhand sessions`, `replay`, `export` and `audit verify` "
                                "can still read it)")


def _set_aside_orphaned_head(path: Path) -> None:
    """A checkpoint beside a database that no longer exists belongs to no chain we open."""
    sidecar = head_path(path)
    if sidecar.exists():
        os.replace(sidecar, sidecar.with_name(f"{sidecar.name}.orphaned-{int(time.time())}"))


def _intent_body(session_id: str, index: int, action: Action | None,
                 proposed_raw: object, validation_error: str | None, decision: Decision | None,
                 frame_before_sha256: str | None, secret: bool, *, now: float) -> dict[str, Any]:
    raw = jsonable(proposed_raw)
    if secret and isinstance(action, TypeText):
        own_text = Scrubber([action.text])
        raw = own_text.value(raw)
        validation_error = own_text.value(validation_error)
        action = mask_action(action)
    status = _initial_status(action, validation_error, decision)
    return {
        "session_id": session_id, "idx": index,
        "action": None if action is None else action.model_dump(mode="json"),
        "action_type": None if action is None else action.type, "proposed_raw": raw,
        "validation_error": validation_error,
        "decision_effect": decision.effect if decision else None,
        "rule_ids": list(decision.rule_ids) if decision else [],
        "decision_reason": decision.reason if decision else None,
        "policy_sha256": decision.policy_sha256 if decision else None,
        "secret": secret, "frame_before_sha256": frame_before_sha256, "status": status,
        "created_at": now, "finished_at": None if status == "pending" else now,
    }


def _initial_status(action: Action | None, validation_error: str | None,
                    decision: Decision | None) -> str:
    if action is None or validation_error is not None:
        return "invalid"
    if decision is not None and decision.effect == "deny":
        return "denied"
    return "pending"
