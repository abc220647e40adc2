"""Copy the desktop's writable files out of a sandbox and back (what checkpoints move).

:func:`take_tree` scans the roots inside the sandbox (the executor's
``files_scan``: every file, folder and symlink, files with their sha256,
cached by stat so an unchanged file is not read again) and reads out, as raw
bytes on the binary channel, only the files whose hashes the blob store does
not hold yet.  :func:`restore_tree` scans again, removes what the checkpoint
does not hold, and writes back only the files whose bytes differ (each
checked against its sha256 inside the sandbox before it is renamed into
place), then the symlinks and modes.

A sandbox whose executor lacks the file ops (an image built before them)
falls back to :mod:`sandbox.snapshots_via_check`, a tar in base64 through
``check``: the same result, many times slower.

Bounds (:class:`SnapshotBounds`): more than ``max_bytes`` of files or
``max_files`` entries under the roots, or more than ``timeout_s`` to take, and
the snapshot is not taken: :class:`SnapshotSkipped` says why, and the caller
records it.  Nothing else in the sandbox is touched: a running application's
memory, and anything sent over the network, are not part of a snapshot.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from sandbox.base import Sandbox
from sandbox.errors import ExecutorError, ExecutorTimeout, SandboxError
from sandbox.executor.wire import MAX_BODY_BYTES
from sandbox.file_ops import READ_BUDGET, SandboxFiles, Scan, TreeEntry, WritePiece
from sandbox.snapshots_via_check import restore_tar, take_tar, tar_of_tree, tree_of_tar

DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # the container's home tmpfs holds 256 MiB
DEFAULT_MAX_FILES = 50_000
DEFAULT_TIMEOUT_S = 20.0
UNBOUNDED = 1 << 62
Transfer = Literal["stream", "check"]


class BlobStore(Protocol):
    """Where a snapshot's file bytes go, by sha256 (the audit's checkpoint store)."""

    def has(self, sha256: str) -> bool: ...

    def put(self, sha256: str, data: bytes) -> int:
        """Store ``data``; the bytes newly stored (0 when it was there already)."""
        ...

    def get(self, sha256: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SnapshotBounds:
    """How big or slow a snapshot may be before it is skipped."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = DEFAULT_MAX_FILES
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Tree:
    """A snapshot: entries by absolute path (file bytes in the blob store)."""

    entries: dict[str, TreeEntry]
    new_bytes: int
    seconds: float
    transfer: Transfer
    excluded: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotSkipped:
    """A snapshot not taken because it would pass a bound (or the sandbox refused)."""

    why: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore changed."""

    written: int
    removed: int
    seconds: float
    transfer: Transfer


class RestoreError(SandboxError):
    """Putting the files back failed part way; the message says where."""


class _OverBound(Exception):
    pass


def files_of(sandbox: Sandbox) -> SandboxFiles | None:
    """The sandbox's file ops, when its executor offers them."""
    files = getattr(sandbox, "files", None)
    return files if isinstance(files, SandboxFiles) else None


# -- taking -------------------------------------------------------------------------------------


def take_tree(sandbox: Sandbox, roots: Sequence[str], blobs: BlobStore,
              bounds: SnapshotBounds = SnapshotBounds(), *,
              transfer: Transfer = "stream") -> Tree | SnapshotSkipped:
    """The files under ``roots``, new bytes put in ``blobs``; or why not (a bound)."""
    started = time.monotonic()
    files = files_of(sandbox) if transfer == "stream" else None
    try:
        if files is not None:
            try:
                return _streamed(files, roots, blobs, bounds, started)
            except ExecutorError as exc:
                if exc.code != "unknown_op":
                    raise
        return _via_check(sandbox, roots, blobs, bounds, started)
    except ExecutorTimeout:
        return SnapshotSkipped(f"it took over {bounds.timeout_s:g} s", _since(started))
    except _OverBound as exc:
        return SnapshotSkipped(str(exc), _since(started))
    except ExecutorError as exc:
        return SnapshotSkipped(f"the sandbox refused it: {exc.message}", _since(started))


def _streamed(files: SandboxFiles, roots: Sequence[str], blobs: BlobStore,
              bounds: SnapshotBounds, started: float) -> Tree | SnapshotSkipped:
    deadline = started + bounds.timeout_s
    scan = files.scan(roots, max_bytes=bounds.max_bytes, max_files=bounds.max_files,
                      deadline_s=_left(deadline))
    if isinstance(scan, str):
        return SnapshotSkipped(scan, _since(started))
    entries = dict(scan.entries)
    new_bytes = _fetch_missing(files, entries, blobs, deadline, bounds.max_bytes)
    new_bytes += _fetch_missing(files, entries, blobs, deadline, bounds.max_bytes)
    return Tree(entries, new_bytes, _since(started), "stream", scan.excluded, scan.unreadable)


def _fetch_missing(files: SandboxFiles, entries: dict[str, TreeEntry], blobs: BlobStore,
                   deadline: float, max_bytes: int) -> int:
    """Read the files whose hashes ``blobs`` lacks (one path per hash); fix up ``entries``
    where a file's bytes changed since the scan.  A second call reads what a first one
    left unstored that way (two paths that shared a hash, one of them changed)."""
    wanted: dict[str, str] = {}
    for path, entry in entries.items():
        if entry.kind == "f" and entry.sha256 not in wanted and not blobs.has(entry.sha256):
            wanted[entry.sha256] = path
    new_bytes = 0
    sizes = [(path, entries[path].size) for path in wanted.values()]
    for path, data in _read_whole(files, sizes, deadline, max_bytes):
        if data is None:
            del entries[path]  # gone since the scan
            continue
        sha = hashlib.sha256(data).hexdigest()
        new_bytes += blobs.put(sha, data)
        if sha != entries[path].sha256:
            entries[path] = replace(entries[path], sha256=sha, size=len(data))
    return new_bytes


@dataclass(slots=True)
class _Reading:
    path: str
    offset: int
    expected: int
    parts: list[bytes] = field(default_factory=list)

    @property
    def length(self) -> int:
        """One byte past what the scan saw, to notice a file that grew since."""
        return min(max(self.expected - self.offset, 0) + 1, READ_BUDGET)


def _read_whole(files: SandboxFiles, sizes: Iterable[tuple[str, int]], deadline: float,
                max_bytes: int) -> Iterator[tuple[str, bytes | None]]:
    """Each file's whole bytes (``None``: gone), read in ranges batched per request.  The
    next request is under way while the caller stores what the last one brought."""
    pending = deque(_Reading(path, 0, size) for path, size in sizes)
    total = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-read") as reader:
        inflight = _send_reads(reader, files, pending, deadline)
        while inflight is not None:
            batch, answers = inflight.result()
            inflight = _send_reads(reader, files, pending, deadline)
            for reading, data in zip(batch, answers, strict=True):
                if data is None:
                    yield reading.path, None
                    continue
                total += len(data)
                if total > max_bytes:
                    raise _OverBound(f"the files grew past the bound of {max_bytes} bytes "
                                     "while they were read")
                reading.parts.append(data)
                if len(data) < reading.length:
                    yield reading.path, b"".join(reading.parts)
                else:
                    reading.offset += len(data)
                    pending.append(reading)
            if inflight is None:  # what was left were continuations of this batch
                inflight = _send_reads(reader, files, pending, deadline)


ReadBatch = tuple[list[_Reading], list[bytes | None]]


def _send_reads(reader: ThreadPoolExecutor, files: SandboxFiles, pending: deque[_Reading],
                deadline: float) -> Future[ReadBatch] | None:
    if not pending:
        return None
    batch = _next_reads(pending)
    items = [(r.path, r.offset, r.length) for r in batch]
    left = _left(deadline)
    return reader.submit(lambda: (batch, files.read(items, left)))


def _next_reads(pending: deque[_Reading]) -> list[_Reading]:
    batch = [pending.popleft()]
    used = batch[0].length
    while pending and used + pending[0].length <= READ_BUDGET:
        used += pending[0].length
        batch.append(pending.popleft())
    return batch


def _via_check(sandbox: Sandbox, roots: Sequence[str], blobs: BlobStore,
               bounds: SnapshotBounds, started: float) -> Tree | SnapshotSkipped:
    taken = take_tar(sandbox, roots, max_bytes=bounds.max_bytes, timeout_s=bounds.timeout_s)
    if isinstance(taken, str):
        return SnapshotSkipped(taken, _since(started))
    entries, data = tree_of_tar(taken)
    new_bytes = sum(blobs.put(sha, content) for sha, content in data.items())
    return Tree(entries, new_bytes, _since(started), "check")


# -- restoring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What turns the files as they are (``current``) into a snapshot's (``target``)."""

    remove: list[str]
    mkdir: list[str]
    write: list[str]
    links: list[tuple[str, str]]
    chmod: list[tuple[str, int]]

    @classmethod
    def between(cls, current: dict[str, TreeEntry], target: dict[str, TreeEntry]) -> RestorePlan:
        write = [p for p, e in target.items()
                 if e.kind == "f" and not _same_file(current.get(p), e)]
        written = set(write)
        return cls(
            remove=_outermost([p for p, e in current.items()
                               if p not in target or target[p].kind != e.kind]),
            mkdir=sorted(p for p, e in target.items()
                         if e.kind == "d" and _kind(current, p) != "d"),
            write=write,
            links=[(p, e.link) for p, e in target.items()
                   if e.kind == "l" and (_kind(current, p) != "l" or current[p].link != e.link)],
            chmod=[(p, e.mode) for p, e in target.items() if e.kind in ("f", "d")
                   and p not in written and _mode_differs(current.get(p), e)])


def _kind(entries: dict[str, TreeEntry], path: str) -> str:
    entry = entries.get(path)
    return "" if entry is None else entry.kind


def _same_file(current: TreeEntry | None, target: TreeEntry) -> bool:
    return current is not None and current.kind == "f" and current.sha256 == target.sha256


def _mode_differs(current: TreeEntry | None, target: TreeEntry) -> bool:
    return current is None or current.kind != target.kind or \
        stat.S_IMODE(current.mode) != stat.S_IMODE(target.mode)


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another of them (removing a folder removes them)."""
    chosen = set(paths)

    def inside_another(path: str) -> bool:
        parent = os.path.dirname(path)
        while parent not in ("/", ""):
            if parent in chosen:
                return True
            parent = os.path.dirname(parent)
        return False

    return sorted(p for p in paths if not inside_another(p))


def restore_tree(sandbox: Sandbox, roots: Sequence[str], target: dict[str, TreeEntry],
                 blobs: BlobStore, *, timeout_s: float = DEFAULT_TIMEOUT_S * 2,
                 transfer: Transfer = "stream") -> Restored:
    """Make the files under ``roots`` exactly ``target``'s; raises :class:`RestoreError`."""
    started = time.monotonic()
    files = files_of(sandbox) if transfer == "stream" else None
    try:
        if files is not None:
            try:
                return _restore_streamed(files, roots, target, blobs, started + timeout_s)
            except ExecutorError as exc:
                if exc.code != "unknown_op":
                    raise
        count = restore_tar(sandbox, tar_of_tree(target, blobs.get), roots, timeout_s=timeout_s)
        return Restored(count, 0, _since(started), "check")
    except ExecutorError as exc:
        raise RestoreError(f"putting the files back failed part way: {exc.message}") from None


def _restore_streamed(files: SandboxFiles, roots: Sequence[str], target: dict[str, TreeEntry],
                      blobs: BlobStore, deadline: float) -> Restored:
    started = time.monotonic()
    current = files.scan(roots, max_bytes=UNBOUNDED, max_files=UNBOUNDED,
                         deadline_s=_left(deadline))
    assert isinstance(current, Scan)  # unbounded: never skipped
    plan = RestorePlan.between(current.entries, target)
    files.apply(roots, remove=plan.remove, mkdir=plan.mkdir, deadline_s=_left(deadline))
    files.write(roots, _pieces(plan.write, target, blobs), deadline_s=_left(deadline))
    files.apply(roots, links=plan.links, chmod=plan.chmod, deadline_s=_left(deadline))
    return Restored(len(plan.write) + len(plan.links), len(plan.remove), _since(started),
                    "stream")


def _pieces(paths: Iterable[str], target: dict[str, TreeEntry],
            blobs: BlobStore) -> Iterator[WritePiece]:
    for path in paths:
        entry = target[path]
        data = blobs.get(entry.sha256)
        for offset in range(0, max(len(data), 1), MAX_BODY_BYTES):
            last = offset + MAX_BODY_BYTES >= len(data)
            yield WritePiece(path, data[offset:offset + MAX_BODY_BYTES],
                             entry.mode if last else None, entry.sha256 if last else "")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ExecutorTimeout("no time left")
    return left


def _since(started: float) -> float:
    return time.monotonic() - started
