"""Bad flags stop ``deskhand mcp`` before anything starts: one line, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mcpserver.conftest import ROOT, SERVER


@pytest.mark.parametrize(("flags", "says"), [
    (["--tools", "everything"], "--tools: unknown grant 'everything'"),
    (["--http", "127.0.0.1:x"], "--http: expected HOST:PORT"),
    (["--http", "192.0.2.1:8765"], "192.0.2.1 is not a loopback address"),
    (["--policy", "no-such-profile"], "no-such-profile: unknown policy profile"),
    (["--approval-wait", "0"], "--approval-wait must be above 0"),
    (["--parser", "tree"], "--parser 'tree': choose one of ocr, a11y, vlm, auto"),
])
def test_a_bad_flag_is_one_line_and_exit_2(tmp_path: Path, flags: list[str], says: str) -> None:
    done = subprocess.run([*SERVER, "--sandbox", "fake", "--db", str(tmp_path / "a.db"),
                           *flags], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "a.db").exists()
