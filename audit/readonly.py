"""Opening an audit database for reading only, wherever it lies.

An archived log on read-only media (a mounted backup, a write-protected
folder) must be readable and verifiable in place.  SQLite in WAL mode wants
to create ``-wal`` and ``-shm`` files beside the database even to read; on
media where it cannot, the file is opened ``immutable`` — safe there, since
nothing can change it.  Where the folder is writable the file is opened
``mode=ro``, which still sees commits of a run writing to it at that moment.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from audit.errors import AuditStorageError


def can_write_beside(path: Path) -> bool:
    """Whether SQLite could create its journal files next to ``path``."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def read_only_uri(path: Path) -> str:
    """The URI that opens ``path`` read-only, creating no file on read-only media."""
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    if can_write_beside(path) or wal.exists():
        return f"{uri}?mode=ro"
    return f"{uri}?immutable=1"


def check_is_database(path: Path) -> None:
    """AuditStorageError naming ``path`` unless it is an SQLite file (or empty/new).

    The header is read through SQLite, never with a plain ``open``: closing any
    descriptor of the file drops every POSIX lock this process holds on it,
    SQLite's own included, and another process closing its last connection then
    takes the database for unused and deletes the WAL a run here still writes.
    """
    if not path.exists():
        raise AuditStorageError(f"no audit database at {path}")
    if path.is_dir():
        raise AuditStorageError(f"{path} is a folder, not an audit database")
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise AuditStorageError(f"{path} is not an audit database (not an SQLite "
                                    "file)") from None
        raise AuditStorageError(f"cannot read {path}: {exc}") from None


def connect_read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only sqlite3 connection to an existing audit database."""
    check_is_database(path)
    try:
        return sqlite3.connect(read_only_uri(path), uri=True,
                               check_same_thread=check_same_thread)
    except sqlite3.Error as exc:
        raise AuditStorageError(f"cannot open {path} for reading: {exc}") from None
