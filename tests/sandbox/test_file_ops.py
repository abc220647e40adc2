"""The executor's file ops and the snapshots built on them, on the real local sandbox."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.channel import Reply
from sandbox.errors import ExecutorError
from sandbox.file_ops import READ_BUDGET, SandboxFiles, Scan, WritePiece
from sandbox.local import LocalSandbox
from sandbox.snapshots import (
    RestorePlan,
    SnapshotBounds,
    SnapshotSkipped,
    Tree,
    restore_tree,
    take_tree,
)

ROOT = "~/file-ops"
# Text, random bytes over the read budget, an executable, a symlink, an empty and a
# read-only folder, a fifo (left out of every scan).
MAKE_TREE = r"""
import os, sys
w = os.path.expanduser("~/file-ops")
os.makedirs(w + "/deep/er", exist_ok=True)
os.makedirs(w + "/empty", exist_ok=True)
open(w + "/notes.txt", "w").write("keep me\n" * 100)
open(w + "/deep/er/big.bin", "wb").write(os.urandom(int(sys.argv[1])))
open(w + "/run.sh", "w").write("#!/bin/sh\necho hi\n"); os.chmod(w + "/run.sh", 0o755)
os.symlink("notes.txt", w + "/link")
os.makedirs(w + "/locked"); open(w + "/locked/in.txt", "w").write("inside\n")
os.chmod(w + "/locked", 0o555)
os.mkfifo(w + "/pipe")
"""
LISTING = r"""
import hashlib, os, stat
for top, dirs, names in sorted(os.walk(os.path.expanduser("~/file-ops"))):
    for n in sorted(dirs + names):
        p = os.path.join(top, n)
        info = os.lstat(p)
        body = b""
        if stat.S_ISLNK(info.st_mode):
            body = os.readlink(p).encode()
        elif stat.S_ISREG(info.st_mode):
            body = open(p, "rb").read()
        print(p, oct(info.st_mode), hashlib.sha256(body).hexdigest())
"""
BIG = READ_BUDGET + 1_500_000  # read in two requests, written in 1 MiB pieces


class MemoryBlobs:
    """The blob store as a dict (the audit's store is tested with the audit)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def has(self, sha256: str) -> bool:
        return sha256 in self.blobs

    def put(self, sha256: str, data: bytes) -> int:
        assert hashlib.sha256(data).hexdigest() == sha256
        if sha256 in self.blobs:
            return 0
        self.blobs[sha256] = data
        return len(data)

    def get(self, sha256: str) -> bytes:
        return self.blobs[sha256]


@pytest.fixture(scope="module")
def box() -> Iterator[LocalSandbox]:
    with LocalSandbox() as sandbox:
        yield sandbox


def _fresh_tree(box: LocalSandbox, big_bytes: int) -> Iterator[None]:
    _run(box, ["sh", "-c", "chmod -R u+w ~/file-ops 2>/dev/null; rm -rf ~/file-ops"])
    _run(box, ["python3", "-c", MAKE_TREE, str(big_bytes)])
    yield
    _run(box, ["sh", "-c", "chmod -R u+w ~/file-ops; rm -rf ~/file-ops"])


@pytest.fixture
def tree(box: LocalSandbox) -> Iterator[None]:
    yield from _fresh_tree(box, BIG)


@pytest.fixture
def small_tree(box: LocalSandbox) -> Iterator[None]:
    """For the base64 path, which takes seconds a megabyte."""
    yield from _fresh_tree(box, 300_000)


def _run(box: LocalSandbox, argv: list[str]) -> str:
    result = box.check(argv, timeout_s=60)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _take(box: LocalSandbox, blobs: MemoryBlobs, **bounds: Any) -> Tree:
    taken = take_tree(box, [ROOT], blobs, SnapshotBounds(**bounds))
    assert isinstance(taken, Tree), taken
    return taken


def _scan(box: LocalSandbox) -> Scan:
    scan = box.files.scan([ROOT], max_bytes=1 << 40, max_files=10_000, deadline_s=30)
    assert isinstance(scan, Scan)
    return scan


@pytest.mark.usefixtures("tree")
def test_a_scan_lists_files_folders_and_symlinks_with_hashes_and_leaves_out_a_fifo(
        box: LocalSandbox) -> None:
    home = _run(box, ["sh", "-c", "echo $HOME"]).strip()
    entries = _scan(box).entries
    root = f"{home}/file-ops"
    assert entries[f"{root}/notes.txt"].sha256 == hashlib.sha256(b"keep me\n" * 100).hexdigest()
    assert entries[f"{root}/link"].kind == "l"
    assert entries[f"{root}/link"].link == "notes.txt"
    assert entries[f"{root}/empty"].kind == "d"
    assert entries[f"{root}/run.sh"].mode & 0o777 == 0o755
    assert f"{root}/pipe" not in entries


@pytest.mark.usefixtures("tree")
def test_a_file_rewritten_with_its_old_size_and_mtime_is_hashed_again(box: LocalSandbox) -> None:
    path = "file-ops/notes.txt"
    before = _scan(box).entries
    rewrite = (f"import os; st = os.stat({path!r}); open({path!r}, 'w').write('KEEP ME\\n' * 100);"
               f" os.utime({path!r}, ns=(st.st_atime_ns, st.st_mtime_ns))")
    _run(box, ["python3", "-c", rewrite])
    after = _scan(box).entries
    (key,) = [k for k in after if k.endswith("/notes.txt")]
    assert after[key].sha256 == hashlib.sha256(b"KEEP ME\n" * 100).hexdigest() != \
        before[key].sha256


@pytest.mark.usefixtures("tree")
def test_a_snapshot_round_trip_puts_back_bytes_modes_links_and_folders(box: LocalSandbox) -> None:
    before = _run(box, ["python3", "-c", LISTING])
    blobs = MemoryBlobs()
    taken = _take(box, blobs)
    assert taken.transfer == "stream"
    assert taken.new_bytes >= BIG
    mess = ("chmod u+w file-ops/locked && rm -rf file-ops/deep file-ops/locked/in.txt && "
            "rm file-ops/link && mkdir file-ops/link && echo new > file-ops/stray && "
            "rmdir file-ops/empty && echo file > file-ops/empty && chmod 600 file-ops/run.sh")
    _run(box, ["sh", "-c", mess])

    restored = restore_tree(box, [ROOT], taken.entries, blobs)

    assert _run(box, ["python3", "-c", LISTING]) == before
    assert restored.transfer == "stream"
    assert _run(box, ["test", "-p", "file-ops/pipe"]) == ""  # never part of it, never removed


@pytest.mark.usefixtures("tree")
def test_a_second_snapshot_reads_only_what_changed(box: LocalSandbox) -> None:
    blobs = MemoryBlobs()
    _take(box, blobs)
    _run(box, ["sh", "-c", "echo more >> file-ops/notes.txt"])
    second = _take(box, blobs)
    assert second.new_bytes == len(b"keep me\n" * 100 + b"more\n")


@pytest.mark.usefixtures("tree")
def test_snapshots_over_a_bound_are_skipped_with_the_reason(box: LocalSandbox) -> None:
    too_big = take_tree(box, [ROOT], MemoryBlobs(), SnapshotBounds(max_bytes=1000))
    too_many = take_tree(box, [ROOT], MemoryBlobs(), SnapshotBounds(max_files=3))
    too_slow = take_tree(box, [ROOT], MemoryBlobs(), SnapshotBounds(timeout_s=0.001))
    assert isinstance(too_big, SnapshotSkipped)
    assert "over the bound of 1000" in too_big.why
    assert isinstance(too_many, SnapshotSkipped)
    assert "files and folders, over the bound of 3" in too_many.why
    assert isinstance(too_slow, SnapshotSkipped)
    assert "took over 0.001 s" in too_slow.why


@pytest.mark.usefixtures("tree")
def test_writes_outside_the_roots_and_bytes_that_miss_their_hash_are_refused(
        box: LocalSandbox) -> None:
    home = _run(box, ["sh", "-c", "echo $HOME"]).strip()
    outside = WritePiece(f"{home}/elsewhere.txt", b"x", 0o644)
    wrong = WritePiece(f"{home}/file-ops/wrong.txt", b"x", 0o644, "0" * 64)
    with pytest.raises(ExecutorError, match="not inside the roots"):
        box.files.write([ROOT], [outside], deadline_s=10)
    with pytest.raises(ExecutorError, match="do not match their sha256"):
        box.files.write([ROOT], [wrong], deadline_s=10)
    assert _run(box, ["ls", "-a", "file-ops"]).split().count(".wrong.txt.deskhand-partial") == 0
    assert box.check(["test", "-e", "file-ops/wrong.txt"]).exit_code == 1


@pytest.mark.usefixtures("small_tree")
def test_the_base64_path_gives_the_same_snapshot(box: LocalSandbox) -> None:
    before = _run(box, ["python3", "-c", LISTING])
    blobs = MemoryBlobs()
    taken = take_tree(box, [ROOT], blobs, transfer="check")
    assert isinstance(taken, Tree)
    assert taken.transfer == "check"
    streamed = _take(box, MemoryBlobs())
    files = {p: e.sha256 for p, e in streamed.entries.items() if e.kind == "f"}
    assert {p: e.sha256 for p, e in taken.entries.items() if e.kind == "f"} == files
    _run(box, ["rm", "-rf", "file-ops/deep"])
    restore_tree(box, [ROOT], taken.entries, blobs, transfer="check")
    assert _run(box, ["python3", "-c", LISTING]) == before


class OldExecutor:
    """The real sandbox, with its file ops renamed to ones the executor does not know
    (what an image built before them answers)."""

    def __init__(self, box: LocalSandbox) -> None:
        self.box = box
        self.kind = box.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box, name)

    @property
    def files(self) -> SandboxFiles:
        def call(op: str, args: dict[str, Any], deadline_s: float, body: bytes = b"") -> Reply:
            return self.box._call(f"old_{op}", args, deadline_s, body)
        return SandboxFiles(call)


@pytest.mark.usefixtures("small_tree")
def test_an_executor_without_file_ops_falls_back_to_the_base64_path(box: LocalSandbox) -> None:
    taken = take_tree(OldExecutor(box), [ROOT], MemoryBlobs())
    assert isinstance(taken, Tree)
    assert taken.transfer == "check"


def test_a_restore_plan_removes_only_the_outermost_of_what_goes() -> None:
    scan = {"/h/a": _dir(), "/h/a/b": _dir(), "/h/a/b/c": _file("1"), "/h/a-b": _file("2"),
            "/h/keep": _file("3")}
    target = {"/h/keep": _file("3"), "/h/new": _file("4")}
    plan = RestorePlan.between(scan, target)
    assert plan.remove == ["/h/a", "/h/a-b"]
    assert plan.write == ["/h/new"]
    assert plan.chmod == []


def _dir() -> Any:
    from sandbox.file_ops import TreeEntry

    return TreeEntry("d", 0o40755)


def _file(sha: str) -> Any:
    from sandbox.file_ops import TreeEntry

    return TreeEntry("f", 0o100644, 1, sha)
