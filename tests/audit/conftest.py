"""Fixtures for the audit log tests: real SQLite files in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.log import AuditLog
from audit.synthetic import record_session


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(db_path) as opened:
        yield opened


@pytest.fixture
def recorded(db_path: Path) -> tuple[Path, str]:
    """A closed database holding one finished 12-step session (with approvals)."""
    with AuditLog.open(db_path) as opened:
        session_id = record_session(opened, 12)
    return db_path, session_id
