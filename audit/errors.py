"""Errors raised by the audit log.

    AuditError
    ├── AuditStorageError      SQLite failed (disk full, locked too long, not a database)
    ├── SchemaError            the file's schema is newer than this deskhand, or unknown
    ├── HeadMismatch           the head checkpoint beside the file is not on its chain
    ├── NotFound               no session, step, approval or frame with that id
    │   └── AmbiguousId        a session id prefix matches more than one session
    └── AuditStateError        a write that does not fit the record's state
                               (a result for a step that is not pending, a closed log)

Tampering is not an exception: :func:`audit.verify.verify` reports it as a value.
SQLAlchemy and sqlite3 errors are translated into these where they enter
(:mod:`audit.store`).
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every audit log failure."""


class AuditStorageError(AuditError):
    """The database could not be read or written; the message names the file."""


class SchemaError(AuditError):
    """The database schema cannot be used by this version of deskhand."""


class HeadMismatch(AuditError):
    """The ``<db>.head`` checkpoint does not match the database: it was cut or rewritten."""


class NotFound(AuditError, LookupError):
    """No record with that id."""


class AmbiguousId(NotFound):
    """A session id prefix matches several sessions; the message lists some."""


class AuditStateError(AuditError):
    """A write that does not fit the current state of a record."""
