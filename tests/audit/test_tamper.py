"""Tampering behind the log's back, with plain sqlite3, is caught and located."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from audit.chain import Head, canonical_json, head_path, read_head, record_hash
from audit.errors import HeadMismatch
from audit.log import AuditLog
from audit.records import SessionInfo
from audit.verify import verify


def _sql(db_path: Path, *statements: str) -> None:
    with sqlite3.connect(db_path) as conn:
        for statement in statements:
            conn.execute(statement)


def _seq_of(db_path: Path, table: str, record_id: str, kind: str) -> int:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT id FROM ledger WHERE record_table = ? AND record_id = ? "
                           "AND kind = ?", (table, record_id, kind)).fetchone()
    return int(row[0])


def test_an_untouched_log_verifies(recorded: tuple[Path, str]) -> None:
    report = verify(recorded[0])
    assert report.ok, report.summary()
    assert report.checkpoint == report.head == read_head(recorded[0])


def test_an_edited_step_row_is_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    _sql(db_path, "UPDATE steps SET decision_effect = 'allow' WHERE id = 7")
    report = verify(db_path)
    assert not report.ok
    assert report.first is not None
    assert report.first.record == "steps#7"
    assert report.first.seq == _seq_of(db_path, "steps", "7", "step.intent")
    assert "decision_effect" in report.first.message


def test_an_edited_ledger_record_is_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    seq = _seq_of(db_path, "steps", "3", "step.result")
    _sql(db_path, f"UPDATE ledger SET body = replace(body, '\"done\"', '\"error\"') "
                  f"WHERE id = {seq}")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.seq == seq
    assert "altered" in report.first.message


def test_a_rehashed_edit_breaks_the_link_to_the_next_record(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    seq = _seq_of(db_path, "steps", "3", "step.result")
    with sqlite3.connect(db_path) as conn:
        kind, table, rid, body, prev = conn.execute(
            "SELECT kind, record_table, record_id, body, prev_hash FROM ledger WHERE id = ?",
            (seq,)).fetchone()
        body = canonical_json({**json.loads(body), "status": "error"})
        digest = record_hash(prev=prev, seq=seq, kind=kind, table=table, record_id=rid,
                             body_json=body)
        conn.execute("UPDATE ledger SET body = ?, hash = ? WHERE id = ?", (body, digest, seq))
        conn.execute("UPDATE steps SET status = 'error' WHERE id = 3")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.seq == seq + 1
    assert "does not follow" in report.first.message


def test_a_deleted_step_is_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    seq = _seq_of(db_path, "steps", "5", "step.intent")
    _sql(db_path, "PRAGMA foreign_keys=OFF", "DELETE FROM steps WHERE id = 5")
    report = verify(db_path)
    assert report.first is not None
    assert (report.first.seq, report.first.record) == (seq, "steps#5")
    assert "missing from its table" in report.first.message


def test_a_deleted_ledger_record_is_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    seq = _seq_of(db_path, "steps", "5", "step.intent")
    _sql(db_path, f"DELETE FROM ledger WHERE id = {seq}")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.seq == seq
    assert "missing" in report.first.message


def test_an_inserted_row_is_named(recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    _sql(db_path, "INSERT INTO steps (id, session_id, idx, secret, status, created_at) "
                  f"VALUES (99, '{session_id}', 3, 0, 'done', 0)")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.record == "steps#99"
    assert "no ledger record" in report.first.message


def test_an_inserted_ledger_record_is_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    seq = _seq_of(db_path, "steps", "4", "step.intent")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE ledger SET id = id + 1000000 WHERE id >= ?", (seq,))
        conn.execute("UPDATE ledger SET id = id - 1000000 + 1 WHERE id >= 1000000")
        prev = conn.execute("SELECT hash FROM ledger WHERE id = ?", (seq - 1,)).fetchone()[0]
        body = canonical_json({"kind": "note", "data": {}, "session_id": "x", "at": 0})
        digest = record_hash(prev=prev, seq=seq, kind="event", table="events", record_id="999",
                             body_json=body)
        conn.execute("INSERT INTO ledger VALUES (?, 'event', 'events', '999', ?, ?, ?)",
                     (seq, body, prev, digest))
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("INSERT INTO events VALUES (999, 'x', 'note', '{}', 0)")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.seq == seq + 1
    assert "does not follow" in report.first.message


def test_reordered_steps_are_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    _sql(db_path, "UPDATE steps SET idx = CASE id WHEN 2 THEN 3 WHEN 3 THEN 2 END "
                  "WHERE id IN (2, 3)")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.record == "steps#2"
    assert "'idx'" in report.first.message


def test_reordered_ledger_records_are_named(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    first = _seq_of(db_path, "steps", "2", "step.intent")
    with sqlite3.connect(db_path) as conn:  # swap the contents of two neighbouring records
        a = conn.execute("SELECT kind, record_table, record_id, body, prev_hash, hash "
                         "FROM ledger WHERE id = ?", (first,)).fetchone()
        b = conn.execute("SELECT kind, record_table, record_id, body, prev_hash, hash "
                         "FROM ledger WHERE id = ?", (first + 1,)).fetchone()
        update = ("UPDATE ledger SET kind=?, record_table=?, record_id=?, body=?, prev_hash=?, "
                  "hash=? WHERE id=?")
        conn.execute(update, (*b, first))
        conn.execute(update, (*a, first + 1))
    report = verify(db_path)
    assert report.first is not None
    assert report.first.seq == first


def _truncate(db_path: Path, keep: int) -> None:
    """Cut the chain after record ``keep`` and remove what those records created."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        cut = conn.execute("SELECT record_table, record_id, kind FROM ledger WHERE id > ?",
                           (keep,)).fetchall()
        for table, record_id, kind in cut:
            if kind == "event" or kind.endswith(".request") or kind == "step.intent":
                key = "sha256" if table == "blobs" else "id"
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (record_id,))
        conn.execute("DELETE FROM ledger WHERE id > ?", (keep,))


def test_a_cut_tail_is_caught_by_the_sidecar(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        session_id = log.start_session(_info())
        log.record_event(session_id, "one", {})
        keep = log.head().count
        log.record_event(session_id, "two", {})
        log.record_event(session_id, "three", {})
        full = log.head()
    _truncate(db_path, keep)
    assert verify(db_path, head=Head("0" * 64, 0)).ok  # consistent on its own...
    report = verify(db_path)  # ...but not with the sidecar
    assert report.first is not None
    assert report.first.seq == keep + 1
    assert f"#{full.count}" in report.first.message
    assert "cut off" in report.first.message


def test_a_cut_tail_is_caught_by_a_pasted_head(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        log.record_event(log.start_session(_info()), "one", {})
        pasted = str(log.head())
        log.record_event(log.start_session(_info()), "two", {})
    _truncate(db_path, Head.parse(pasted).count - 1)
    head_path(db_path).unlink()
    report = verify(db_path, head=Head.parse(pasted))
    assert report.first is not None
    assert report.first.seq == Head.parse(pasted).count


def test_a_rewritten_history_differs_from_the_head(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        log.record_event(log.start_session(_info()), "one", {})
        pasted = log.head()
    _sql(db_path, f"UPDATE ledger SET hash = '{'1' * 64}' WHERE id = {pasted.count}")
    report = verify(db_path, head=pasted)
    assert any(p.record == "head" for p in report.problems)


def test_altered_frame_bytes_are_caught(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    with sqlite3.connect(db_path) as conn:
        data = bytearray(conn.execute("SELECT data FROM blobs WHERE rowid = 3").fetchone()[0])
        data[-5] ^= 0xFF
        conn.execute("UPDATE blobs SET data = ? WHERE rowid = 3", (bytes(data),))
    report = verify(db_path)
    assert report.first is not None
    assert report.first.record.startswith("blobs#")
    assert "altered" in report.first.message


def test_opening_a_cut_log_is_refused(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        session_id = log.start_session(_info())
        keep = log.head().count
        log.record_event(session_id, "one", {})
    _truncate(db_path, keep)
    with pytest.raises(HeadMismatch, match="not on this database's chain"):
        AuditLog.open(db_path)


def _info() -> SessionInfo:
    from audit.synthetic import session_info

    return session_info()


def test_a_torn_checkpoint_slot_falls_back_to_the_previous_head(db_path: Path) -> None:
    with AuditLog.open(db_path) as log:
        log.record_event(log.start_session(_info()), "one", {})
        previous = log.head()
        log.record_event(log.start_session(_info()), "two", {})
        newest = log.head()
    assert read_head(db_path) == newest
    sidecar = head_path(db_path)
    data = bytearray(sidecar.read_bytes())
    slot = len(data) // 2
    start = (newest.count % 2) * slot
    data[start + 10:start + 20] = b"x" * 10  # a write cut short by a crash
    sidecar.write_bytes(bytes(data))
    if newest.count - previous.count == 1:
        assert read_head(db_path) == previous
    assert verify(db_path).ok


def test_an_unreadable_checkpoint_is_reported(recorded: tuple[Path, str]) -> None:
    db_path, _ = recorded
    head_path(db_path).write_bytes(b"garbage")
    report = verify(db_path)
    assert report.first is not None
    assert report.first.record == "head"
