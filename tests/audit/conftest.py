"""Fixtures for the audit log tests: real SQLite files in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.chain import head_path
from audit.log import AuditLog
from audit.synthetic import record_session


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(db_path) as opened:
        yield opened


@pytest.fixture(scope="session")
def _recorded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("template") / "audit.db"
    with AuditLog.open(path) as opened:
        session_id = record_session(opened, 12)
    return path, session_id


@pytest.fixture
def recorded(db_path: Path, _recorded_template: tuple[Path, str]) -> tuple[Path, str]:
    """A closed database (and its head sidecar) holding one finished 12-step session."""
    template, session_id = _recorded_template
    shutil.copyfile(template, db_path)
    shutil.copyfile(head_path(template), head_path(db_path))
    return db_path, session_id
