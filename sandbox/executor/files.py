"""The file ops behind checkpoints: scan, read, write and apply, as raw bytes on the channel.

The host (``sandbox/snapshots.py``) takes a checkpoint in two requests: a
``files_scan`` of the roots (one entry per file, folder and symlink, files
with their sha256) and a ``files_read`` of the files it does not hold yet.
It restores with ``files_apply`` (remove what should not be there, make
folders) and ``files_write`` (file bytes, verified against their sha256 and
renamed into place), then ``files_apply`` again (symlinks, modes).

A file's hash is kept with the stat fields that change whenever its bytes
can have (device, inode, size, mtime and ctime in ns; ctime cannot be set by
a user), so a second scan reads only files written since the first.

Walks never cross into another filesystem (a bind mount, the checkout bound
into the home): those folders are listed as ``excluded``.  Sockets, fifos and
devices are left out; files that cannot be read are listed as ``unreadable``.
Standard library only, like the rest of the package.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .wire import Deadline, RequestError

MAX_REPLY_BYTES = 64 << 20  # the host asks for at most this much per read
HASH_BLOCK = 1 << 20
PARTIAL_SUFFIX = ".deskhand-partial"
Result = tuple[dict[str, Any], bytes]
StatKey = tuple[int, int, int, int, int]


@dataclass(slots=True)
class _Partial:
    """A file being written by ``files_write``, not yet renamed into place."""

    temp: str
    handle: BinaryIO
    digest: Any = field(default_factory=hashlib.sha256)
    written: int = 0


@dataclass(slots=True)
class _Walk:
    entries: list[list[Any]] = field(default_factory=list)
    files: list[tuple[int, str, os.stat_result]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    total: int = 0


class Files:
    """The ``files_*`` ops, with the hash cache that makes repeated scans cheap."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[StatKey, str]] = {}
        self._partial: dict[str, _Partial] = {}

    # -- scan --------------------------------------------------------------------------------

    def scan(self, args: dict[str, Any], body: bytes, deadline: Deadline) -> Result:
        """``{roots, max_bytes, max_files}`` → ``{count, bytes, excluded, unreadable}`` and
        a JSON body ``[[path, kind f|d|l, mode, size, sha256, link], ...]``; or
        ``{skipped: why}`` when the files pass a bound (nothing hashed)."""
        roots = _roots(args.get("roots"))
        max_bytes, max_files = _limit(args, "max_bytes"), _limit(args, "max_files")
        walk = _Walk()
        for root in roots:
            _walk_root(root, walk, deadline)
        if walk.total > max_bytes:
            return {"skipped": f"{walk.total} bytes of files, over the bound of "
                               f"{max_bytes}"}, b""
        if len(walk.entries) > max_files:
            return {"skipped": f"{len(walk.entries)} files and folders, over the bound of "
                               f"{max_files}"}, b""
        self._hash_files(walk, deadline)
        kept = [entry for entry in walk.entries if entry[4] is not None]
        listing = json.dumps(kept, separators=(",", ":")).encode("utf-8")
        return {"count": len(kept), "bytes": walk.total, "excluded": walk.excluded,
                "unreadable": walk.unreadable}, listing

    def _hash_files(self, walk: _Walk, deadline: Deadline) -> None:
        for index, path, info in walk.files:
            deadline.check(f"hashing {walk.total} bytes of files")
            try:
                walk.entries[index][4] = self._sha256(path, info)
            except PermissionError:
                walk.unreadable.append(path)
                walk.entries[index][4] = None
            except OSError:  # gone since the walk: it is not part of this scan
                walk.entries[index][4] = None

    def _sha256(self, path: str, info: os.stat_result) -> str:
        key = _stat_key(info)
        known = self._hashes.get(path)
        if known is not None and known[0] == key:
            return known[1]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
        sha = digest.hexdigest()
        self._hashes[path] = (key, sha)
        return sha

    # -- read --------------------------------------------------------------------------------

    def read(self, args: dict[str, Any], body: bytes, deadline: Deadline) -> Result:
        """``{items: [[path, offset, length], ...]}`` → ``{lengths: [n or -1 when gone]}`` and
        the bytes read, item after item (a short read means the file ended)."""
        items = args.get("items")
        if not isinstance(items, list) or not all(_is_read_item(i) for i in items):
            raise RequestError("bad_request", "items must be [[path, offset, length], ...]")
        if sum(item[2] for item in items) > MAX_REPLY_BYTES:
            raise RequestError("too_large", f"a read may ask for at most {MAX_REPLY_BYTES} bytes")
        lengths, chunks = [], []
        for path, offset, length in items:
            deadline.check("reading files")
            data = _read_range(path, offset, length)
            lengths.append(-1 if data is None else len(data))
            chunks.append(data or b"")
        return {"lengths": lengths}, b"".join(chunks)

    # -- write -------------------------------------------------------------------------------

    def write(self, args: dict[str, Any], body: bytes, deadline: Deadline) -> Result:
        """``{roots, items: [[path, length, mode or null, sha256 or ""], ...]}`` with the
        items' bytes as the body, in order.  A path's pieces come in order across requests;
        the piece with a mode is the last: the file is checked against ``sha256``, given
        its mode and renamed over ``path``."""
        roots = _roots(args.get("roots"))
        items = args.get("items")
        if not isinstance(items, list) or not all(_is_write_item(i) for i in items):
            raise RequestError("bad_request", "items must be [[path, length, mode, sha256], ...]")
        if sum(item[1] for item in items) != len(body):
            raise RequestError("bad_request", "the body's length is not the items' lengths")
        offset = 0
        for path, length, mode, sha in items:
            deadline.check("writing files")
            self._write_piece(_inside(path, roots), body[offset:offset + length], mode, sha)
            offset += length
        return {"written": len(items)}, b""

    def _write_piece(self, path: str, data: bytes, mode: int | None, sha: str) -> None:
        partial = self._partial.get(path) or self._open_partial(path)
        try:
            partial.handle.write(data)
            partial.digest.update(data)
            partial.written += len(data)
            if mode is not None:
                self._finish(path, partial, mode, sha)
        except BaseException:
            self._abandon(path)
            raise

    def _open_partial(self, path: str) -> _Partial:
        folder, name = os.path.split(path)
        temp = os.path.join(folder, f".{name}{PARTIAL_SUFFIX}")
        try:
            os.makedirs(folder, exist_ok=True)
            handle = open(temp, "wb")  # noqa: SIM115 - kept open across requests
        except OSError as exc:
            raise RequestError("run_failed", f"cannot write {path}: {exc.strerror}") from None
        partial = self._partial[path] = _Partial(temp, handle)
        return partial

    def _finish(self, path: str, partial: _Partial, mode: int, sha: str) -> None:
        partial.handle.close()
        del self._partial[path]
        if sha and partial.digest.hexdigest() != sha:
            os.unlink(partial.temp)
            raise RequestError("bad_request", f"{path}: the bytes do not match their sha256")
        os.chmod(partial.temp, stat.S_IMODE(mode))
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        os.replace(partial.temp, path)
        with contextlib.suppress(OSError):
            self._hashes[path] = (_stat_key(os.lstat(path)), partial.digest.hexdigest())

    def _abandon(self, path: str) -> None:
        partial = self._partial.pop(path, None)
        if partial is not None:
            partial.handle.close()
            with contextlib.suppress(OSError):
                os.unlink(partial.temp)

    # -- apply -------------------------------------------------------------------------------

    def apply(self, args: dict[str, Any], body: bytes, deadline: Deadline) -> Result:
        """``{roots, remove: [path], mkdir: [path], links: [[path, target]],
        chmod: [[path, mode]]}``, done in that order; paths outside the roots are refused.
        Folders get their modes through ``chmod``, last, so a read-only one is filled first."""
        roots = _roots(args.get("roots"))
        for path in _paths(args.get("remove", []), roots):
            deadline.check("removing files")
            _remove(path)
        for path in _paths(args.get("mkdir", []), roots):
            _make_folder(path)
        for path, target in _pairs(args.get("links", []), roots, str):
            _remove(path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)
        for path, mode in _pairs(args.get("chmod", []), roots, int):
            if not os.path.islink(path):  # a mode is never given through a symlink
                os.chmod(path, stat.S_IMODE(mode))
        return {}, b""

    def abandon_all(self) -> None:
        """Drop every half-written file (the executor is ending)."""
        for path in list(self._partial):
            self._abandon(path)


# -- walking -----------------------------------------------------------------------------------


def _walk_root(root: str, walk: _Walk, deadline: Deadline) -> None:
    try:
        device = os.lstat(root).st_dev
    except OSError:
        return  # a root that does not exist holds no files
    folders = [root]
    while folders:
        deadline.check("listing files")
        folder = folders.pop()
        try:
            listing = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in listing:
            _add_entry(entry, device, walk, folders)


def _add_entry(entry: os.DirEntry[str], device: int, walk: _Walk, folders: list[str]) -> None:
    path = entry.path
    try:
        info = entry.stat(follow_symlinks=False)
        path.encode("utf-8")
    except UnicodeEncodeError:  # the channel's JSON carries UTF-8 names only
        walk.unreadable.append(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        return
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        if info.st_dev != device:
            walk.excluded.append(path)
            return
        walk.entries.append([path, "d", info.st_mode, 0, "", ""])
        folders.append(path)
    elif stat.S_ISREG(info.st_mode):
        if path.endswith(PARTIAL_SUFFIX):
            return
        walk.files.append((len(walk.entries), path, info))
        walk.entries.append([path, "f", info.st_mode, info.st_size, "", ""])
        walk.total += info.st_size
    elif stat.S_ISLNK(info.st_mode):
        with contextlib.suppress(OSError):
            walk.entries.append([path, "l", info.st_mode, 0, "", os.readlink(path)])


def _stat_key(info: os.stat_result) -> StatKey:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _read_range(path: str, offset: int, length: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        chunks, missing = [], length
        while missing:
            chunk = os.pread(fd, min(missing, HASH_BLOCK * 8), offset + length - missing)
            if not chunk:
                break
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _make_folder(path: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)


# -- checking arguments --------------------------------------------------------------------------


def _roots(value: Any) -> list[str]:
    """The roots, expanded (``~``), absolute, without one inside another."""
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise RequestError("bad_request", "roots must be a non-empty list of paths")
    expanded = sorted({os.path.normpath(os.path.expanduser(r)) for r in value})
    if not all(os.path.isabs(r) and r != "/" for r in expanded):
        raise RequestError("bad_request", "roots must be absolute paths (or ~), not /")
    return [r for r in expanded if not any(_under(r, other) for other in expanded if other != r)]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _inside(path: Any, roots: list[str]) -> str:
    if not isinstance(path, str) or "\x00" in path:
        raise RequestError("bad_request", "a path must be a string without NUL")
    normal = os.path.normpath(path)
    if normal != path or not any(_under(path, root) and path != root for root in roots):
        raise RequestError("bad_request", f"{path!r} is not inside the roots")
    return path


def _paths(value: Any, roots: list[str]) -> list[str]:
    if not isinstance(value, list):
        raise RequestError("bad_request", "expected a list of paths")
    return [_inside(path, roots) for path in value]


def _pairs(value: Any, roots: list[str], kind: type) -> list[tuple[str, Any]]:
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[1], kind) for p in value):
        raise RequestError("bad_request", f"expected a list of [path, {kind.__name__}] pairs")
    return [(_inside(path, roots), second) for path, second in value]


def _limit(args: dict[str, Any], name: str) -> int:
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RequestError("bad_request", f"{name} must be a non-negative integer")
    return value


def _is_read_item(item: Any) -> bool:
    return (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in item[1:]))


def _is_write_item(item: Any) -> bool:
    return (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
            and isinstance(item[1], int) and item[1] >= 0
            and (item[2] is None or (isinstance(item[2], int) and not isinstance(item[2], bool)))
            and isinstance(item[3], str))
