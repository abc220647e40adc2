"""The slow way to copy the desktop's files out and back: a tar in base64 through ``check``.

For sandboxes whose executor has no ``files_*`` ops (an image built before
them) and as the baseline the checkpoint benchmark compares the streamed
path with.  A gzip'd tar of the files under the roots is made inside the
sandbox by a short Python program run through
:meth:`sandbox.base.Sandbox.check`, staged in :data:`STAGING` and read out in
base64 chunks (``run`` replies carry text, at most 64 KiB each).  Restoring
writes a tar back the same way, removes every file under the roots that it
does not hold, and unpacks it.  10 MB takes seconds this way.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import tarfile
import time
from collections.abc import Callable, Sequence

from sandbox.base import Sandbox
from sandbox.errors import SandboxError
from sandbox.file_ops import TreeEntry

STAGING = "/tmp/.deskhand-snapshot"
CHUNK_BYTES = 36 * 1024  # base64 of this fits the channel's 64 KiB reply and an argv item

# Runs inside the sandbox: argv = STAGING MAX_BYTES ROOT...; prints {"size", "files"} or
# {"skipped"}.  Paths in the tar are absolute (home expanded) without the leading /.
_PACK = r"""
import json, os, sys, tarfile
staging = sys.argv[1]; max_bytes = int(sys.argv[2]); roots = sys.argv[3:]
def files(root):
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if os.path.join(top, d) != staging)
        for name in sorted(names):
            yield os.path.join(top, name)
paths, total = [], 0
for root in (os.path.expanduser(r) for r in roots):
    for path in files(root):
        if os.path.islink(path) or os.path.isfile(path):
            total += os.lstat(path).st_size
            paths.append(path)
if total > max_bytes:
    print(json.dumps({"skipped": f"{total} bytes of files, over the bound of {max_bytes}"}))
    sys.exit(0)
os.makedirs(staging, exist_ok=True)
with tarfile.open(os.path.join(staging, "snap.tar.gz"), "w:gz", compresslevel=3) as tar:
    for path in paths:
        try:
            tar.add(path, arcname=path.lstrip("/"), recursive=False)
        except OSError:
            pass
print(json.dumps({"size": os.path.getsize(os.path.join(staging, "snap.tar.gz")),
                  "files": len(paths)}))
"""

_READ = r"""
import base64, sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2])); sys.stdout.write(base64.b64encode(f.read(int(sys.argv[3]))).decode())
"""

_APPEND = r"""
import base64, os, sys
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
with open(sys.argv[1], "wb" if sys.argv[2] == "0" else "ab") as f:
    f.write(base64.b64decode(sys.argv[3]))
"""

# argv = TAR STAGING ROOT...: remove what the tar does not hold, then unpack it.
_UNPACK = r"""
import os, shutil, sys, tarfile
tar_path, staging, roots = sys.argv[1], sys.argv[2], sys.argv[3:]
with tarfile.open(tar_path, "r:gz") as tar:
    members = tar.getmembers()
    kept = {"/" + m.name for m in members}
    for root in (os.path.expanduser(r) for r in roots):
        for top, dirs, names in os.walk(root, topdown=False):
            if top == staging or top.startswith(staging + "/"):
                continue
            for name in names:
                path = os.path.join(top, name)
                if path not in kept and (os.path.islink(path) or os.path.isfile(path)):
                    os.unlink(path)
    for member in members:
        target = "/" + member.name
        if member.isdir():
            continue
        if os.path.lexists(target) and (os.path.islink(target) or not os.path.isdir(target)):
            os.unlink(target)
    try:
        tar.extractall("/", filter="tar")
    except TypeError:  # Python before 3.11.4 has no filters
        tar.extractall("/")
shutil.rmtree(staging, ignore_errors=True)
print(len(members))
"""


class SnapshotError(SandboxError):
    """A snapshot or restore failed inside the sandbox."""


def _python(sandbox: Sandbox, program: str, args: Sequence[str], timeout_s: float) -> str:
    result = sandbox.check(["python3", "-c", program, *args], timeout_s=max(timeout_s, 1.0))
    if result.exit_code != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SnapshotError(f"snapshot program failed in the sandbox: {last}")
    return result.stdout


def take_tar(sandbox: Sandbox, roots: Sequence[str], *, max_bytes: int,
             timeout_s: float) -> bytes | str:
    """The files under ``roots`` as a gzip'd tar, or why not (over ``max_bytes`` or
    ``timeout_s``)."""
    started = time.monotonic()
    packed = json.loads(_python(sandbox, _PACK, [STAGING, str(max_bytes), *roots], timeout_s))
    if "skipped" in packed:
        return str(packed["skipped"])
    tar_path, size = f"{STAGING}/snap.tar.gz", int(packed["size"])
    chunks = []
    for offset in range(0, size, CHUNK_BYTES):
        if time.monotonic() - started > timeout_s:
            return f"reading it out took over {timeout_s:g} s"
        text = _python(sandbox, _READ, [tar_path, str(offset), str(CHUNK_BYTES)], timeout_s)
        chunks.append(base64.b64decode(text))
    return b"".join(chunks)


def restore_tar(sandbox: Sandbox, tar_gz: bytes, roots: Sequence[str], *,
                timeout_s: float) -> int:
    """Make the files under ``roots`` exactly those of ``tar_gz``; returns how many."""
    tar_path = f"{STAGING}/restore.tar.gz"
    for offset in range(0, max(len(tar_gz), 1), CHUNK_BYTES):
        chunk = base64.b64encode(tar_gz[offset:offset + CHUNK_BYTES]).decode()
        _python(sandbox, _APPEND, [tar_path, str(offset), chunk], timeout_s)
    return int(_python(sandbox, _UNPACK, [tar_path, STAGING, *roots], timeout_s).strip() or 0)


# -- tar <-> tree ----------------------------------------------------------------------------


def tree_of_tar(tar_gz: bytes) -> tuple[dict[str, TreeEntry], dict[str, bytes]]:
    """The tar's entries by absolute path, and its files' bytes by sha256."""
    entries: dict[str, TreeEntry] = {}
    blobs: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
        for member in tar.getmembers():
            path = "/" + member.name
            if member.issym():
                entries[path] = TreeEntry("l", stat.S_IFLNK | member.mode, link=member.linkname)
                continue
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            data = extracted.read()
            sha = hashlib.sha256(data).hexdigest()
            blobs[sha] = data
            entries[path] = TreeEntry("f", stat.S_IFREG | member.mode, len(data), sha)
    return entries, blobs


def tar_of_tree(entries: dict[str, TreeEntry], read: Callable[[str], bytes]) -> bytes:
    """``entries`` as a gzip'd tar (names without the leading /), file bytes from ``read``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=3) as tar:
        for path, entry in sorted(entries.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mode = stat.S_IMODE(entry.mode)
            if entry.kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
                tar.addfile(info)
            elif entry.kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = read(entry.sha256)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
