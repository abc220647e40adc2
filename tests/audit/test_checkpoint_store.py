"""The checkpoint store: each content once, compressed where that pays, checked on read."""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import pytest

from audit.checkpoints import CheckpointStore, FileEntry, Manifest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_text_is_compressed_random_bytes_are_kept_as_they_are_and_both_read_back(
        tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    text, noise = b"ordinary line\n" * 10_000, os.urandom(100_000)
    assert store.put(_sha(text), text) == len(text)
    assert store.put(_sha(noise), noise) == len(noise)
    assert store.put(_sha(text), text) == 0  # stored once
    assert (tmp_path / _sha(text)[:2] / _sha(text)).stat().st_size < len(text) // 10
    assert (tmp_path / _sha(noise)[:2] / _sha(noise)).stat().st_size == len(noise) + 1
    assert store.get(_sha(text)) == text
    assert store.get(_sha(noise)) == noise


def test_a_blob_written_before_raw_blobs_existed_still_reads(tmp_path: Path) -> None:
    data = b"from an older checkpoint\n" * 50
    path = tmp_path / _sha(data)[:2] / _sha(data)
    path.parent.mkdir(parents=True)
    path.write_bytes(zlib.compress(data, 3))
    assert CheckpointStore(tmp_path).get(_sha(data)) == data


def test_a_blob_that_does_not_match_its_hash_is_refused(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put("0" * 64, b"not what the name says")
    with pytest.raises(ValueError, match="does not match its hash"):
        store.get("0" * 64)


def test_an_older_manifest_of_files_only_turns_into_regular_files() -> None:
    old = Manifest({"home/desk/a.txt": FileEntry("ab" * 32, 3, 0o644),
                    "home/desk/l": FileEntry("", 0, 0o777, "a.txt")}, 0)
    entries = old.tree_entries()
    assert entries["/home/desk/a.txt"].kind == "f"
    assert entries["/home/desk/a.txt"].mode == 0o100644
    assert entries["/home/desk/l"].kind == "l"
    assert old.file_count == 2
