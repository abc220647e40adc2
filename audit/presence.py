"""Who is attached to answer approvals: one lock file per attached approver.

An approver that answers through the database (``deskhand tui --attach``)
holds an exclusive ``flock`` on ``<db>.approvers/<pid>-<random>.lock`` for as
long as it is attached.  The kernel drops the lock when the process dies,
however it dies, so a run without a terminal can ask "is anyone there to
answer?" without heartbeats, clocks or trusting process ids — the same
device :mod:`audit.liveness` uses for runs.  No schema change: presence is
not a record of the log, but each run records what it concluded (an
approval denied because no approver was attached).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path


class ApproverPresence:
    """The approver lock files of one audit database."""

    def __init__(self, db_path: Path) -> None:
        self.directory = db_path.with_name(db_path.name + ".approvers")

    def attach(self, name: str) -> AttachedApprover:
        """Announce an approver until :meth:`AttachedApprover.detach` (or the process ends)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(descriptor, name.encode("utf-8", "replace"))
        return AttachedApprover(path, descriptor)

    def attached(self) -> list[str]:
        """Names of the approvers attached now; lock files of dead ones are removed."""
        if not self.directory.is_dir():
            return []
        names = []
        for path in sorted(self.directory.glob("*.lock")):
            name = _held_by_someone(path)
            if name is not None:
                names.append(name)
        return names

    def anyone_attached(self) -> bool:
        return bool(self.attached())


def _held_by_someone(path: Path) -> str | None:
    """The approver's name when a living process holds ``path``; else clears it away."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return path.read_text(encoding="utf-8", errors="replace") or path.stem
        with contextlib.suppress(OSError):
            path.unlink()  # its approver is gone
        return None
    finally:
        os.close(descriptor)


class AttachedApprover:
    """One attached approver's hold on its lock file."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def detach(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._descriptor)
        self._descriptor = None
