"""Check an audit database against its own hash chain and its head checkpoint.

Three things must agree:

1. the ledger is an unbroken chain: records numbered 1..N, each naming the
   previous record's hash and hashing to its own;
2. the state tables (sessions, steps, approvals, events, blobs,
   schema_version) hold exactly what the ledger's records add up to — no row
   edited, added or removed behind the log's back; blob bytes match the hash
   the ledger recorded for them;
3. the chain reaches the head checkpoint (``<db>.head`` or one given by hand),
   so a tail cut off together with its rows is still noticed.

:func:`verify` never writes to the file and names the first bad record.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.chain import GENESIS, Head, read_head, record_hash
from audit.columns import JSON_COLUMNS, PRIMARY_KEYS, UNCHAINED_COLUMNS
from audit.frames import apply_tiles, open_png, pixels_digest
from audit.readonly import connect_read_only

_UNPLACED = 1 << 62  # sorts problems that no ledger record names after those that one does


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong; ``seq`` is the ledger record it concerns, when there is one."""

    seq: int | None
    record: str
    message: str

    def __str__(self) -> str:
        where = f"record #{self.seq}" if self.seq is not None else "no ledger record"
        return f"{where} ({self.record}): {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify` found.  ``first`` is the earliest bad record."""

    path: Path
    records: int
    head: Head
    checkpoint: Head | None
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        if self.ok:
            against = f", matches head {self.checkpoint.count}" if self.checkpoint else \
                " (no head checkpoint to compare with)"
            return f"ok: {self.records} records, chain intact{against}; head {self.head}"
        return f"TAMPERED: first bad {self.first}"


@dataclass(slots=True)
class _Expected:
    """A record's state as its ledger records add up to."""

    first_seq: int
    fields: dict[str, Any] = field(default_factory=dict)
    set_by: dict[str, int] = field(default_factory=dict)  # field -> ledger record that set it


def verify(path: Path, head: Head | None = None, *, deep: bool = False) -> VerifyReport:
    """Verify the database at ``path`` against ``head`` (default: its sidecar).

    ``deep`` also decodes every frame and checks its pixels' hash.
    """
    path = Path(path)
    problems: list[Problem] = []
    try:
        checkpoint = head if head is not None else read_head(path)
    except ValueError as exc:
        checkpoint = None
        problems.append(Problem(0, "head", str(exc)))
    with _read_only(path) as conn:
        problems += _integrity(conn)
        last, expected, chain_problems = _walk_chain(conn)
        problems += chain_problems
        problems += _compare_state(conn, expected)
        problems += _check_blobs(conn, expected, deep=deep)
        if checkpoint is not None:
            problems += _check_checkpoint(conn, last, checkpoint)
    problems.sort(key=lambda p: _UNPLACED if p.seq is None else p.seq)
    return VerifyReport(path=path, records=last.count, head=last, checkpoint=checkpoint,
                        problems=tuple(problems))


class _Connection:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"no audit database at {path}")
        self.conn = connect_read_only(path)
        # A tampered file may hold anything anywhere: never fail on undecodable text.
        self.conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _read_only(path: Path) -> _Connection:
    return _Connection(path)


def _integrity(conn: sqlite3.Connection) -> list[Problem]:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if result == ["ok"]:
        return []
    return [Problem(0, "file", "SQLite integrity check failed: " + "; ".join(result[:3]))]


# -- 1. the chain --------------------------------------------------------------

def _walk_chain(conn: sqlite3.Connection) -> tuple[Head, dict[tuple[str, str], _Expected],
                                                   list[Problem]]:
    expected: dict[tuple[str, str], _Expected] = {}
    problems: list[Problem] = []
    prev, count = GENESIS, 0
    for seq, kind, table, record_id, body_json, prev_hash, digest in conn.execute(
            "SELECT id, kind, record_table, record_id, body, prev_hash, hash FROM ledger "
            "ORDER BY id"):
        label = f"{kind} {table}#{record_id}"
        if not problems:
            problems += _link_problems(seq, count, prev, label, kind, table, record_id,
                                       body_json, prev_hash, digest)
        prev, count = digest, seq
        _fold(expected, seq, table, record_id, body_json, problems, label)
    return Head(prev, count), expected, problems


def _link_problems(seq: int, count: int, prev: str, label: str, kind: str, table: str,
                   record_id: str, body_json: str, prev_hash: str, digest: str) -> list[Problem]:
    if seq != count + 1:
        missing = f"record #{count + 1} is missing" if seq > count + 1 else "out of order"
        return [Problem(count + 1, label, f"{missing} (the next record is #{seq})")]
    if prev_hash != prev:
        return [Problem(seq, label, "does not follow the record before it (previous hash "
                                    "differs): a record was inserted, removed or reordered")]
    actual = record_hash(prev=prev, seq=seq, kind=kind, table=table, record_id=record_id,
                         body_json=body_json)
    if actual != digest:
        return [Problem(seq, label, "content was altered (its hash does not match)")]
    return []


def _fold(expected: dict[tuple[str, str], _Expected], seq: int, table: str, record_id: str,
          body_json: str, problems: list[Problem], label: str) -> None:
    try:
        body = json.loads(body_json)
    except json.JSONDecodeError:
        problems.append(Problem(seq, label, "body is not JSON"))
        return
    entry = expected.get((table, record_id))
    if entry is None:
        entry = expected[(table, record_id)] = _Expected(seq)
    entry.fields.update(body)
    entry.set_by.update(dict.fromkeys(body, seq))


# -- 2. the state tables ---------------------------------------------------------

def _compare_state(conn: sqlite3.Connection,
                   expected: dict[tuple[str, str], _Expected]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for table, key_column in PRIMARY_KEYS.items():
        for key, row in _rows(conn, table, key_column):
            seen.add((table, key))
            entry = expected.get((table, key))
            if entry is None:
                problems.append(Problem(None, f"{table}#{key}", "row has no ledger record: it "
                                        "was added behind the log's back"))
                continue
            problems += _field_problems(table, key, row, entry)
    for (table, key), entry in expected.items():
        if (table, key) not in seen and table in PRIMARY_KEYS:
            problems.append(Problem(entry.first_seq, f"{table}#{key}",
                                    "row is missing from its table: deleted, "
                                    "or this ledger record was forged"))
    return problems


def _rows(conn: sqlite3.Connection, table: str,
          key_column: str) -> Iterator[tuple[str, dict[str, Any]]]:
    skip = UNCHAINED_COLUMNS.get(table, frozenset()) | {key_column}
    cursor = conn.execute(f"SELECT * FROM {table}")
    names = [column[0] for column in cursor.description]
    key_at = names.index(key_column)
    for values in cursor:
        yield str(values[key_at]), {n: v for n, v in zip(names, values, strict=True)
                                    if n not in skip}


def _field_problems(table: str, key: str, row: dict[str, Any],
                    entry: _Expected) -> list[Problem]:
    json_columns = JSON_COLUMNS.get(table, frozenset())
    for column, actual in row.items():
        want = entry.fields.get(column)
        if column in json_columns and actual is not None:
            try:
                actual = json.loads(actual)
            except (TypeError, json.JSONDecodeError):
                actual = f"<not JSON: {actual!r}>"
        if actual != want:
            return [Problem(entry.set_by.get(column, entry.first_seq), f"{table}#{key}",
                            f"field {column!r} was edited: the table says {_short(actual)}, "
                            f"the chain says {_short(want)}")]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- blobs and the checkpoint ----------------------------------------------------

def _check_blobs(conn: sqlite3.Connection, expected: dict[tuple[str, str], _Expected], *,
                 deep: bool) -> list[Problem]:
    problems: list[Problem] = []
    decoded: dict[str, Any] = {}
    for sha256, codec, data, base in conn.execute(_blob_query(conn)):
        entry = expected.get(("blobs", sha256))
        if entry is None:
            continue  # reported by _compare_state
        label = f"blobs#{sha256[:12]}"
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        stored = hashlib.sha256(data).hexdigest()
        recorded = entry.fields.get("stored_sha256", sha256 if codec == "png" else None)
        if stored != recorded or (codec == "png" and stored != sha256):
            problems.append(Problem(entry.first_seq, label, "frame bytes were altered"))
        elif deep:
            problems += _check_pixels(decoded, sha256, codec, data, base, entry, label)
    return problems


def _blob_query(conn: sqlite3.Connection) -> str:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
    if "codec" not in columns:  # schema version 1: every blob is the sandbox's PNG
        return "SELECT sha256, 'png', png, NULL FROM blobs ORDER BY rowid"
    return "SELECT sha256, codec, data, base_sha256 FROM blobs ORDER BY rowid"


def _check_pixels(decoded: dict[str, Any], sha256: str, codec: str, data: bytes,
                  base: str | None, entry: _Expected, label: str) -> list[Problem]:
    try:
        image = open_png(data) if codec == "png" else apply_tiles(decoded[base or ""], data)
    except (KeyError, ValueError, OSError) as exc:
        return [Problem(entry.first_seq, label, f"frame does not decode: {exc}")]
    decoded[sha256] = image
    if pixels_digest(image) != entry.fields.get("pixels_sha256", pixels_digest(image)):
        return [Problem(entry.first_seq, label, "decoded pixels differ from the recorded hash")]
    return []


def _check_checkpoint(conn: sqlite3.Connection, last: Head, checkpoint: Head) -> list[Problem]:
    if checkpoint.count > last.count:
        return [Problem(last.count + 1, "tail",
                        f"the log ends at record #{last.count} but the head checkpoint says "
                        f"#{checkpoint.count}: records were cut off the end")]
    if checkpoint.count == 0:
        return []
    row = conn.execute("SELECT hash FROM ledger WHERE id = ?", (checkpoint.count,)).fetchone()
    if row is None or row[0] != checkpoint.hash:
        return [Problem(checkpoint.count, "head",
                        "differs from the head checkpoint: the chain was rewritten")]
    return []
