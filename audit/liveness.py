"""Which sessions still have a living writer: one lock file per open session.

A run holds an exclusive ``flock`` on ``<db>.locks/<session id>`` from just
before its session is created until it ends.  The kernel drops the lock when
the process dies, however it dies, so "can I take the lock?" answers "is the
run that owns this session gone?" without trusting process ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class SessionLocks:
    """The lock files of one audit database."""

    def __init__(self, db_path: Path) -> None:
        self.directory = db_path.with_name(db_path.name + ".locks")
        self._held: dict[str, int] = {}

    def hold(self, session_id: str) -> None:
        """Take the lock of a session this process is about to run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._path(session_id), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._held[session_id] = descriptor

    def release(self, session_id: str) -> None:
        """Let go of a session this process ran; its lock file goes away."""
        descriptor = self._held.pop(session_id, None)
        if descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()
        os.close(descriptor)

    def release_all(self) -> None:
        for session_id in list(self._held):
            self.release(session_id)

    def owner_is_gone(self, session_id: str) -> bool:
        """True when no living process holds the session's lock."""
        if session_id in self._held:
            return False
        try:
            descriptor = os.open(self._path(session_id), os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            return True  # no lock directory: nobody ever held a lock here
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(descriptor)
        return True

    def forget(self, session_id: str) -> None:
        """Remove the lock file of a session found dead."""
        with contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.lock"
