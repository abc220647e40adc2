"""The hash chain: canonical encoding of ledger records and the head checkpoint.

Every change to the log is one *ledger* record ``(seq, kind, table, record_id,
body)``.  Its hash covers the canonical JSON (sorted keys, no spaces, UTF-8)
of those fields plus the previous record's hash, so one chain runs through
the whole database.  The *head* (last hash and record count) is also kept
outside the database in ``<db>.head`` so that a cut-off tail is noticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """The one encoding that is hashed: sorted keys, compact, NaN refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def record_hash(*, prev: str, seq: int, kind: str, table: str, record_id: str,
                body_json: str) -> str:
    """Hash of one ledger record; ``body_json`` must already be canonical JSON.

    The envelope is written out by hand in sorted-key order so that it equals
    ``canonical_json`` of the whole record without re-encoding the body.
    """
    envelope = (
        '{"body":' + body_json
        + ',"kind":' + canonical_json(kind)
        + ',"prev":' + canonical_json(prev)
        + ',"record_id":' + canonical_json(record_id)
        + ',"seq":' + str(seq)
        + ',"table":' + canonical_json(table) + "}"
    )
    return hashlib.sha256(envelope.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """The last record's hash and how many records the chain holds."""

    hash: str
    count: int

    def __str__(self) -> str:
        return f"{self.hash}:{self.count}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """Parse ``HASH:COUNT`` as printed by ``deskhand audit head``."""
        digest, sep, count = text.strip().partition(":")
        if not sep or len(digest) != 64 or not count.isdigit():
            raise ValueError(f"a head looks like <64 hex digits>:<count>, not {text.strip()!r}")
        try:
            int(digest, 16)
        except ValueError:
            raise ValueError(f"head hash {digest!r} is not hexadecimal") from None
        return cls(digest.lower(), int(count))


EMPTY_HEAD = Head(GENESIS, 0)


def head_path(db_path: Path) -> Path:
    """Where the head checkpoint of ``db_path`` lives."""
    return db_path.with_name(db_path.name + ".head")


# The sidecar holds two fixed-size slots; head N goes to slot N % 2 with a
# checksum.  One small in-place write per commit (no rename, no fsync) and
# still all-or-nothing: a write torn by a crash spoils only its own slot, and
# the reader falls back to the other one, the previous head.
_SLOT = "{hash}:{count:020d}:{crc:08x}\n"
_SLOT_SIZE = len(_SLOT.format(hash=GENESIS, count=0, crc=0))


def _slot_text(head: Head) -> bytes:
    crc = zlib.crc32(f"{head.hash}:{head.count}".encode("ascii"))
    return _SLOT.format(hash=head.hash, count=head.count, crc=crc).encode("ascii")


class HeadFile:
    """The sidecar of one database, kept open for cheap updates after each commit."""

    def __init__(self, db_path: Path) -> None:
        self.path = head_path(db_path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def write(self, head: Head) -> None:
        os.pwrite(self._fd, _slot_text(head), (head.count % 2) * _SLOT_SIZE)

    def close(self) -> None:
        os.close(self._fd)


def write_head(db_path: Path, head: Head) -> None:
    """Record ``head`` in the sidecar of ``db_path`` (both slots: a fresh start)."""
    with open(head_path(db_path), "wb") as sidecar:
        sidecar.write(_slot_text(head) * 2)


def read_head(db_path: Path) -> Head | None:
    """The sidecar's newest intact checkpoint; None when there is no sidecar.

    Raises ValueError when the sidecar exists but neither slot is intact.
    """
    try:
        data = head_path(db_path).read_bytes()
    except FileNotFoundError:
        return None
    slots = [_parse_slot(data[i:i + _SLOT_SIZE]) for i in (0, _SLOT_SIZE)]
    intact = [slot for slot in slots if slot is not None]
    if not intact:
        raise ValueError(f"the head checkpoint {head_path(db_path)} is unreadable")
    return max(intact, key=lambda head: head.count)


def _parse_slot(raw: bytes) -> Head | None:
    try:
        digest, count, _crc = raw.decode("ascii").strip().split(":")
        head = Head.parse(f"{digest}:{int(count)}")
    except (UnicodeDecodeError, ValueError):
        return None
    return head if _slot_text(head) == raw else None
