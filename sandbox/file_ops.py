"""The host's end of the executor's file ops (``sandbox/executor/files.py``), typed.

:class:`SandboxFiles` turns the four ``files_*`` requests into values and
splits what it sends into requests the executor accepts (a body of at most
1 MiB, a header well under 1 MiB).  What to read, write or remove is decided
by :mod:`sandbox.snapshots`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sandbox.channel import Reply
from sandbox.errors import ExecutorError
from sandbox.executor.wire import MAX_BODY_BYTES

EntryKind = Literal["f", "d", "l"]
BodyCall = Callable[..., Reply]  # (op, args, deadline_s, body=b"")
ARGS_BUDGET = 256 * 1024  # bytes of paths per request header (the limit is 1 MiB)
READ_BUDGET = 32 << 20  # bytes asked for per read reply (the executor allows 64 MiB)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One path under the roots: a file (with its bytes' sha256), a folder or a symlink.
    ``mode`` is the whole ``st_mode`` (type and permission bits)."""

    kind: EntryKind
    mode: int
    size: int = 0
    sha256: str = ""
    link: str = ""


@dataclass(frozen=True, slots=True)
class Scan:
    """What a ``files_scan`` found: entries by absolute path, and what it left out."""

    entries: dict[str, TreeEntry]
    total_bytes: int
    excluded: tuple[str, ...] = ()
    """Folders on another filesystem (bind mounts), not walked into."""
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WritePiece:
    """Bytes for ``path`` from ``offset``; the last piece of a file carries its mode."""

    path: str
    data: bytes
    mode: int | None = None
    sha256: str = ""


class SandboxFiles:
    """The desktop's files through one executor's channel."""

    def __init__(self, call: BodyCall) -> None:
        self._call = call

    def scan(self, roots: Sequence[str], *, max_bytes: int, max_files: int,
             deadline_s: float) -> Scan | str:
        """The files under ``roots``, or why they were not scanned (over a bound)."""
        reply = self._call("files_scan", {"roots": list(roots), "max_bytes": max_bytes,
                                          "max_files": max_files}, deadline_s, b"")
        if "skipped" in reply.result:
            return str(reply.result["skipped"])
        return Scan(entries=_entries(reply.body), total_bytes=int(reply.result["bytes"]),
                    excluded=tuple(map(str, reply.result.get("excluded", []))),
                    unreadable=tuple(map(str, reply.result.get("unreadable", []))))

    def read(self, items: Sequence[tuple[str, int, int]], deadline_s: float) -> list[bytes | None]:
        """Each ``(path, offset, length)`` range's bytes (fewer at the file's end; ``None``:
        the file is gone).  ``length`` adds up to at most :data:`READ_BUDGET` per request."""
        reply = self._call("files_read", {"items": [list(item) for item in items]}, deadline_s)
        lengths = reply.result.get("lengths")
        if not isinstance(lengths, list) or len(lengths) != len(items) or \
                sum(max(0, n) for n in lengths) != len(reply.body):
            raise ExecutorError("protocol", "files_read reply does not match its body")
        out: list[bytes | None] = []
        offset = 0
        for length in lengths:
            out.append(None if length < 0 else reply.body[offset:offset + length])
            offset += max(0, length)
        return out

    def write(self, roots: Sequence[str], pieces: Iterable[WritePiece],
              deadline_s: float) -> None:
        """Send ``pieces`` (each at most 1 MiB) in as few requests as fit the body limit."""
        for batch in _batches(pieces, lambda p: len(p.data), MAX_BODY_BYTES,
                              lambda p: len(p.path) + 96, ARGS_BUDGET):
            items = [[p.path, len(p.data), p.mode, p.sha256] for p in batch]
            self._call("files_write", {"roots": list(roots), "items": items}, deadline_s,
                       b"".join(p.data for p in batch))

    def apply(self, roots: Sequence[str], *, remove: Sequence[str] = (),
              mkdir: Sequence[str] = (), links: Sequence[tuple[str, str]] = (),
              chmod: Sequence[tuple[str, int]] = (), deadline_s: float) -> None:
        """Remove paths, make folders, make symlinks, set modes (in that order)."""
        steps: list[tuple[str, Any]] = [*(("remove", p) for p in remove),
                                        *(("mkdir", p) for p in mkdir),
                                        *(("links", list(pair)) for pair in links),
                                        *(("chmod", list(pair)) for pair in chmod)]
        for batch in _batches(steps, lambda s: len(json.dumps(s[1])), ARGS_BUDGET):
            args: dict[str, Any] = {"roots": list(roots)}
            for name, value in batch:
                args.setdefault(name, []).append(value)
            self._call("files_apply", args, deadline_s)


def _entries(body: bytes) -> dict[str, TreeEntry]:
    try:
        rows = json.loads(body.decode("utf-8"))
        return {str(path): TreeEntry(kind, int(mode), int(size), str(sha), str(link))
                for path, kind, mode, size, sha, link in rows}
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ExecutorError("protocol", f"malformed files_scan listing: {exc}") from None


def _batches(items: Iterable[T], size: Callable[[T], int], limit: int,
             second_size: Callable[[T], int] | None = None,
             second_limit: int = 0) -> Iterator[list[T]]:
    """``items`` in order, in runs whose sizes (and second sizes) add up to the limits."""
    batch: list[T] = []
    used = second_used = 0
    for item in items:
        cost, second = size(item), second_size(item) if second_size else 0
        if batch and (used + cost > limit or (second_size and second_used + second > second_limit)):
            yield batch
            batch, used, second_used = [], 0, 0
        batch.append(item)
        used, second_used = used + cost, second_used + second
    if batch:
        yield batch
