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


def write_head(db_path: Path, head: Head) -> None:
    """Replace the sidecar atomically (write a temporary file, rename it over)."""
    target = head_path(db_path)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{head}\n", encoding="ascii")
    os.replace(temporary, target)


def read_head(db_path: Path) -> Head | None:
    """The sidecar's checkpoint, or None when there is none."""
    try:
        text = head_path(db_path).read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    return Head.parse(text)
