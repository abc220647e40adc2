"""SQLite plumbing: the engine, write transactions and the ledger append.

Every write goes through :func:`create` or :func:`update`, which change one
record of a state table *and* append the matching ledger record in the same
transaction — so the state tables never say anything the chain does not.

Write transactions start with ``BEGIN IMMEDIATE``: reading the chain's last
hash and appending the next record is atomic across every process attached
to the file.  WAL journal with ``synchronous=FULL``: a commit that returned
survives a crash of the process or of the machine.

sqlite3 and SQLAlchemy errors are translated into :mod:`audit.errors` here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from audit.chain import GENESIS, Head, canonical_json, record_hash
from audit.errors import AuditStorageError
from audit.models import JSON_COLUMNS, PRIMARY_KEYS

BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "deskhand_audit_write"


Synchronous = Literal["FULL", "NORMAL", "OFF"]


def make_engine(path: Path, *, synchronous: Synchronous = "FULL") -> Engine:
    """An engine for the audit database at ``path`` with the log's pragmas.

    Anything but ``FULL`` gives up durability: only benchmarks that build
    throw-away logs use it.
    """
    engine = create_engine(f"sqlite:///{path}")

    def configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        _configure_connection(dbapi_connection, synchronous)

    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", _begin)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take the write lock at BEGIN."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _configure_connection(dbapi_connection: sqlite3.Connection, synchronous: str) -> None:
    # We issue BEGIN ourselves (see _begin); pysqlite's own transaction handling is off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn database errors into :class:`AuditStorageError` naming ``path``."""
    try:
        yield
    except DBAPIError as exc:
        raise AuditStorageError(f"audit database {path}: {exc.orig}") from exc
    except (SQLAlchemyError, sqlite3.Error) as exc:
        raise AuditStorageError(f"audit database {path}: {exc}") from exc


# -- the ledger ---------------------------------------------------------------

def _raw(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``: the hot path skips SQLAlchemy's layers.

    Statements run inside the transaction ``conn`` began; errors are
    ``sqlite3.Error``, which :func:`translated` handles.
    """
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def last_head(conn: Connection) -> Head:
    """The chain's head as this transaction sees it."""
    row = _raw(conn).execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    return Head(row[1], row[0]) if row else Head(GENESIS, 0)


def append(conn: Connection, *, kind: str, table: str, record_id: str,
           body: Mapping[str, Any]) -> Head:
    """Append one ledger record after the current head; returns the new head."""
    head = last_head(conn)
    seq = head.count + 1
    body_json = canonical_json(body)
    digest = record_hash(prev=head.hash, seq=seq, kind=kind, table=table,
                         record_id=record_id, body_json=body_json)
    _raw(conn).execute(
        "INSERT INTO ledger (id, kind, record_table, record_id, body, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, kind, table, record_id, body_json, head.hash, digest),
    )
    return Head(digest, seq)


def create(conn: Connection, *, kind: str, table: str, body: Mapping[str, Any],
           record_id: str | int | None = None,
           unchained: Mapping[str, Any] | None = None) -> tuple[int | str, Head]:
    """Insert a record into ``table`` and chain it; returns its id and the new head.

    ``unchained`` columns are stored but not put in the ledger (a blob's bytes,
    which the ledger covers by their hash instead).
    """
    row = dict(_encoded(table, body))
    row.update(unchained or {})
    key = PRIMARY_KEYS[table]
    if record_id is not None:
        row[key] = record_id
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cursor = _raw(conn).execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                tuple(row.values()))
    new_id: int | str = record_id if record_id is not None else int(cursor.lastrowid or 0)
    return new_id, append(conn, kind=kind, table=table, record_id=str(new_id), body=body)


def update(conn: Connection, *, kind: str, table: str, record_id: str | int,
           changes: Mapping[str, Any]) -> Head:
    """Change fields of one record and chain the change; returns the new head."""
    row = dict(_encoded(table, changes))
    assignments = ", ".join(f"{column} = ?" for column in row)
    key = PRIMARY_KEYS[table]
    _raw(conn).execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?",
                       (*row.values(), record_id))
    return append(conn, kind=kind, table=table, record_id=str(record_id), body=changes)


def _encoded(table: str, body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    json_columns = JSON_COLUMNS.get(table, frozenset())
    for column, value in body.items():
        if column in json_columns and value is not None:
            yield column, canonical_json(value)
        else:
            yield column, value


def scalar(conn: Connection, sql: str, *params: Any) -> Any:
    """The first column of the first row, or None."""
    row = _raw(conn).execute(sql, params).fetchone()
    return None if row is None else row[0]
