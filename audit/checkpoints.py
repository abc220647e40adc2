"""Checkpoints of the desktop's files: content-addressed, deduplicated, in the chain.

A checkpoint arrives as a gzip'd tar (:mod:`sandbox.snapshots`).
:class:`CheckpointStore` splits it into one blob per file, named by the
sha256 of its bytes and kept zlib-compressed in a directory beside the audit
database (``<db>.checkpoints/``); a file that an earlier checkpoint already
stored is not written again.  The manifest (path -> sha256, mode, size) is
what the audit chain records, as a ``checkpoint`` event with the step it
precedes, so the chain's hashes vouch for every file's bytes.  A checkpoint
that passed a bound is recorded as ``checkpoint`` with ``skipped``; undoing
records ``rollback``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audit.log import AuditLog
from audit.records import EventRecord

CHECKPOINT_EVENT = "checkpoint"
ROLLBACK_EVENT = "rollback"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a checkpoint (``link`` is a symlink's target, else empty)."""

    sha256: str
    size: int
    mode: int
    link: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A checkpoint's files, its hash (of the manifest) and the bytes it newly stored."""

    files: dict[str, FileEntry]
    new_bytes: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.as_data(), sort_keys=True).encode()).hexdigest()

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def as_data(self) -> dict[str, list[Any]]:
        return {path: [e.sha256, e.size, e.mode, e.link] for path, e in self.files.items()}

    @classmethod
    def from_data(cls, data: dict[str, list[Any]], new_bytes: int = 0) -> Manifest:
        return cls({path: FileEntry(str(s), int(n), int(m), str(link))
                    for path, (s, n, m, link) in data.items()}, new_bytes)


class CheckpointStore:
    """File blobs by sha256 in ``directory`` (compressed, each stored once)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def beside(cls, log: AuditLog) -> CheckpointStore:
        return cls(Path(f"{log.path}.checkpoints"))

    def save(self, tar_gz: bytes) -> Manifest:
        """Store the files of ``tar_gz`` not stored yet; their manifest."""
        files: dict[str, FileEntry] = {}
        new_bytes = 0
        with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.issym():
                    files[member.name] = FileEntry("", 0, member.mode, member.linkname)
                    continue
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                data = extracted.read()
                sha = hashlib.sha256(data).hexdigest()
                new_bytes += self._put(sha, data)
                files[member.name] = FileEntry(sha, len(data), member.mode)
        return Manifest(files, new_bytes)

    def tar_gz(self, manifest: Manifest) -> bytes:
        """The checkpoint's files as a gzip'd tar again (raises on a blob that does not
        match its hash)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=3) as tar:
            for path, entry in sorted(manifest.files.items()):
                info = tarfile.TarInfo(path)
                info.mode = entry.mode
                if entry.link:
                    info.type, info.linkname = tarfile.SYMTYPE, entry.link
                    tar.addfile(info)
                    continue
                data = self.get(entry.sha256)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def get(self, sha256: str) -> bytes:
        data = zlib.decompress(self._path(sha256).read_bytes())
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"checkpoint blob {sha256[:12]} does not match its hash")
        return data

    def _put(self, sha256: str, data: bytes) -> int:
        path = self._path(sha256)
        if path.exists():
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(zlib.compress(data, 3))
        partial.replace(path)
        return len(data)

    def _path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256


class EventSource(Protocol):
    """Where checkpoints are read from: the audit log, or a reader of it."""

    def events(self, session_id: str) -> list[EventRecord]: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A recorded checkpoint: the step it precedes and its manifest (None: skipped)."""

    step: int
    manifest: Manifest | None
    skipped: str = ""


def record_checkpoint(log: AuditLog, session_id: str, step: int, manifest: Manifest,
                      seconds: float) -> None:
    log.record_event(session_id, CHECKPOINT_EVENT, {
        "step": step, "sha256": manifest.sha256, "size": manifest.size,
        "new_bytes": manifest.new_bytes, "files": manifest.as_data(),
        "seconds": round(seconds, 3)})


def record_skipped_checkpoint(log: AuditLog, session_id: str, step: int, why: str) -> None:
    log.record_event(session_id, CHECKPOINT_EVENT, {"step": step, "skipped": why})


def record_rollback(log: AuditLog, session_id: str, to_step: int, manifest: Manifest) -> None:
    log.record_event(session_id, ROLLBACK_EVENT, {
        "to_step": to_step, "sha256": manifest.sha256, "files": len(manifest.files)})


def checkpoints(log: EventSource, session_id: str) -> list[Checkpoint]:
    """The session's checkpoints in the order they were taken."""
    found = []
    for event in log.events(session_id):
        if event.kind != CHECKPOINT_EVENT:
            continue
        data = event.data
        manifest = None if "skipped" in data else Manifest.from_data(
            data["files"], int(data.get("new_bytes", 0)))
        found.append(Checkpoint(int(data["step"]), manifest, str(data.get("skipped", ""))))
    return found


def checkpoint_before(log: EventSource, session_id: str, step: int) -> Checkpoint | None:
    """The checkpoint taken right before ``step`` (None: there is none)."""
    return next((c for c in reversed(checkpoints(log, session_id)) if c.step == step), None)
