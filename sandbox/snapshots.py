"""Copy the desktop's writable files out of a sandbox and back, through ``check``.

A snapshot is a gzip'd tar of the files under ``roots`` (``~`` is the
desktop user's home), made inside the sandbox by a short Python program run
through the exec channel (:meth:`sandbox.base.Sandbox.check`), staged in
:data:`STAGING` and read out in base64 chunks (the channel carries text, at
most 64 KiB a reply).  Restoring writes the tar back the same way, removes
every file under the roots that the snapshot does not hold, and unpacks it.

Bounds: a snapshot whose files add up to more than ``max_bytes``, or that
takes longer than ``timeout_s``, is not taken: :class:`SnapshotSkipped` says
why.  Nothing else in the sandbox is touched: a running application's memory,
open files' state in other processes and anything sent over the network are
not part of a snapshot.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.base import Sandbox
from sandbox.errors import SandboxError

STAGING = "/tmp/.deskhand-snapshot"
DEFAULT_ROOTS: tuple[str, ...] = ("~",)
CHUNK_BYTES = 36 * 1024  # base64 of this fits the channel's 64 KiB reply and an argv item

# Runs inside the sandbox: argv = pack MAX_BYTES ROOT...; prints {"size", "files"} or
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
                if path not in kept:
                    os.unlink(path)
    for member in members:
        target = "/" + member.name
        if os.path.lexists(target) and (os.path.islink(target) or not os.path.isdir(target)):
            os.unlink(target)
    try:
        tar.extractall("/", filter="tar")
    except TypeError:  # Python before 3.11.4 has no filters
        tar.extractall("/")
shutil.rmtree(staging, ignore_errors=True)
print(len(members))
"""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A gzip'd tar of the files under the roots, and how long it took to take."""

    tar_gz: bytes
    files: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SnapshotSkipped:
    """A snapshot not taken because it would pass a bound."""

    why: str
    seconds: float


class SnapshotError(SandboxError):
    """A snapshot or restore failed inside the sandbox."""


def _python(sandbox: Sandbox, program: str, args: Sequence[str], timeout_s: float) -> str:
    result = sandbox.check(["python3", "-c", program, *args], timeout_s=max(timeout_s, 1.0))
    if result.exit_code != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SnapshotError(f"snapshot program failed in the sandbox: {last}")
    return result.stdout


def take_snapshot(sandbox: Sandbox, roots: Sequence[str] = DEFAULT_ROOTS, *,
                  max_bytes: int = 200 * 1024 * 1024,
                  timeout_s: float = 30.0) -> Snapshot | SnapshotSkipped:
    """The files under ``roots``, or why they were not taken (over ``max_bytes`` or
    ``timeout_s``)."""
    started = time.monotonic()
    packed = json.loads(_python(sandbox, _PACK, [STAGING, str(max_bytes), *roots], timeout_s))
    if "skipped" in packed:
        return SnapshotSkipped(str(packed["skipped"]), time.monotonic() - started)
    tar_path, size = f"{STAGING}/snap.tar.gz", int(packed["size"])
    chunks = []
    for offset in range(0, size, CHUNK_BYTES):
        if time.monotonic() - started > timeout_s:
            return SnapshotSkipped(f"reading it out took over {timeout_s:g} s",
                                   time.monotonic() - started)
        text = _python(sandbox, _READ, [tar_path, str(offset), str(CHUNK_BYTES)], timeout_s)
        chunks.append(base64.b64decode(text))
    return Snapshot(b"".join(chunks), int(packed["files"]), time.monotonic() - started)


def restore_snapshot(sandbox: Sandbox, tar_gz: bytes, roots: Sequence[str] = DEFAULT_ROOTS, *,
                     timeout_s: float = 60.0) -> int:
    """Make the files under ``roots`` exactly those of ``tar_gz``; returns how many."""
    tar_path = f"{STAGING}/restore.tar.gz"
    for offset in range(0, max(len(tar_gz), 1), CHUNK_BYTES):
        chunk = base64.b64encode(tar_gz[offset:offset + CHUNK_BYTES]).decode()
        _python(sandbox, _APPEND, [tar_path, str(offset), chunk], timeout_s)
    return int(_python(sandbox, _UNPACK, [tar_path, STAGING, *roots], timeout_s).strip() or 0)
