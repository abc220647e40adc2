"""Checkpoints of the desktop's files: content-addressed, deduplicated, in the chain.

A checkpoint arrives as a tree of entries (:mod:`sandbox.snapshots`): files
with the sha256 of their bytes, folders, symlinks.  :class:`CheckpointStore`
keeps one blob per file content, named by that sha256, in a directory beside
the audit database (``<db>.checkpoints/``); a content an earlier checkpoint
already stored is not written again.  A blob is zlib-compressed when that
pays (a first probe of the bytes shrinks), else stored as is behind a zero
byte (no zlib stream starts with one).  The manifest (path -> sha256, size,
mode, link) is what the audit chain records, as a ``checkpoint`` event with the
step it precedes, so the chain's hashes vouch for every file's bytes.  A
checkpoint that passed a bound is recorded as ``checkpoint`` with
``skipped``; undoing records ``rollback``.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audit.log import AuditLog
from audit.records import EventRecord
from sandbox.file_ops import EntryKind, TreeEntry
from sandbox.snapshots import Tree

CHECKPOINT_EVENT = "checkpoint"
ROLLBACK_EVENT = "rollback"
RAW_MARK = b"\x00"
PROBE_BYTES = 8 * 1024
WORTH_COMPRESSING = 0.9  # the probe must shrink to this share of its size
LISTED_PATHS = 100  # paths a checkpoint event names of those it left out (and their count)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One path of a checkpoint.  ``mode`` is the whole ``st_mode``; checkpoints recorded
    before folders were kept hold the permission bits of files only.  ``link`` is a
    symlink's target, else empty."""

    sha256: str
    size: int
    mode: int
    link: str = ""

    @property
    def kind(self) -> EntryKind:
        if self.link:
            return "l"
        return "d" if stat.S_ISDIR(self.mode) else "f"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A checkpoint's paths (absolute, without the leading /), its hash (of the manifest)
    and the bytes it newly stored."""

    files: dict[str, FileEntry]
    new_bytes: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.as_data(), sort_keys=True).encode()).hexdigest()

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files.values())

    @property
    def file_count(self) -> int:
        """Files and symlinks (not folders)."""
        return sum(entry.kind != "d" for entry in self.files.values())

    def as_data(self) -> dict[str, list[Any]]:
        return {path: [e.sha256, e.size, e.mode, e.link] for path, e in self.files.items()}

    @classmethod
    def from_data(cls, data: dict[str, list[Any]], new_bytes: int = 0) -> Manifest:
        return cls({path: FileEntry(str(s), int(n), int(m), str(link))
                    for path, (s, n, m, link) in data.items()}, new_bytes)

    @classmethod
    def of_tree(cls, tree: Tree) -> Manifest:
        return cls({path.lstrip("/"): FileEntry(e.sha256, e.size, e.mode, e.link)
                    for path, e in tree.entries.items()}, tree.new_bytes)

    def tree_entries(self) -> dict[str, TreeEntry]:
        """The entries by absolute path, as :func:`sandbox.snapshots.restore_tree` takes them."""
        out: dict[str, TreeEntry] = {}
        for path, e in self.files.items():
            mode = e.mode if stat.S_IFMT(e.mode) else e.mode | stat.S_IFREG
            out["/" + path] = TreeEntry(e.kind, mode, e.size, e.sha256, e.link)
        return out


class CheckpointStore:
    """File blobs by sha256 in ``directory``, each stored once (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def beside(cls, log: AuditLog) -> CheckpointStore:
        return cls(Path(f"{log.path}.checkpoints"))

    def has(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def put(self, sha256: str, data: bytes) -> int:
        """Store ``data`` under its hash (which the caller computed); bytes newly stored."""
        path = self._path(sha256)
        if path.exists():
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(_packed(data))
        partial.replace(path)
        return len(data)

    def get(self, sha256: str) -> bytes:
        """A blob's bytes; raises ``ValueError`` when it is missing or does not match the
        hash."""
        try:
            packed = self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise ValueError(f"checkpoint blob {sha256[:12]} is missing from "
                             f"{self.directory}") from None
        data = packed[1:] if packed[:1] == RAW_MARK else zlib.decompress(packed)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"checkpoint blob {sha256[:12]} does not match its hash")
        return data

    def _path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256


def _packed(data: bytes) -> bytes:
    probe = data[:PROBE_BYTES]
    if probe and len(zlib.compress(probe, 1)) > WORTH_COMPRESSING * len(probe):
        return RAW_MARK + data
    return zlib.compress(data, 1)
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
                      tree: Tree) -> None:
    """The checkpoint before ``step``, with what it left out (never silently)."""
    data: dict[str, Any] = {
        "step": step, "sha256": manifest.sha256, "size": manifest.size,
        "new_bytes": manifest.new_bytes, "files": manifest.as_data(),
        "seconds": round(tree.seconds, 3), "transfer": tree.transfer}
    for name, paths in (("not_covered", tree.excluded), ("unreadable", tree.unreadable)):
        if paths:  # not_covered: folders on other filesystems (bind mounts), not walked
            data[name] = list(paths[:LISTED_PATHS])
            data[f"{name}_count"] = len(paths)
    log.record_event(session_id, CHECKPOINT_EVENT, data)


def record_skipped_checkpoint(log: AuditLog, session_id: str, step: int, why: str) -> None:
    log.record_event(session_id, CHECKPOINT_EVENT, {"step": step, "skipped": why})


def record_rollback(log: AuditLog, session_id: str, to_step: int, manifest: Manifest) -> None:
    log.record_event(session_id, ROLLBACK_EVENT, {
        "to_step": to_step, "sha256": manifest.sha256, "files": manifest.file_count})


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
