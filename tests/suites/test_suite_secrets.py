"""A suite that names secrets: the case types the value, the evidence never shows it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from audit.log import AuditLog
from sandbox.base import Frame

VALUE = "plum-harbor-7731-quartz"
SUITE = """\
suite: Secrets
defaults:
  sandbox: fake
  secrets: {TOKEN: SUITE_TOKEN_SOURCE}
cases:
  - id: types-a-token
    steps:
      - type: "login {{secret:TOKEN}}"
      - assert_text: {text: "welcome aboard", timeout: 1}
"""


def _deskhand_test(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "s.suite.yaml"
    suite.write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "agent", "test", str(suite), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, **env})


def test_a_failing_case_keeps_its_evidence_redacted(tmp_path: Path) -> None:
    done = _deskhand_test(tmp_path, {"SUITE_TOKEN_SOURCE": VALUE})

    assert done.returncode == 1, done.stdout + done.stderr  # the assertion fails, as written
    out = tmp_path / "out"
    for path in out.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
    db = out / "audit.db"
    with sqlite3.connect(db) as conn:
        shas = [row[0] for row in conn.execute("SELECT sha256 FROM blobs")]
    parser = OcrScreenParser(RapidOcrReader.load(threads=2))
    with AuditLog.open(db) as log:
        frames = [log.get_frame_png(sha) for sha in shas]
    readings = [" ".join(e.text for e in parser.parse_full(Frame.from_png(png, 1280, 800)))
                for png in frames]
    assert readings
    assert not any("harbor" in text or "7731" in text for text in readings)


def test_a_suite_secret_that_cannot_be_read_stops_the_run_before_any_sandbox(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SUITE_TOKEN_SOURCE"}
    done = subprocess.run(
        [sys.executable, "-m", "agent", "test", str(_written(tmp_path)), "--output",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, env=env)

    assert done.returncode == 2
    assert "defaults.secrets" in done.stderr
    assert "SUITE_TOKEN_SOURCE is not set" in done.stderr


def _written(tmp_path: Path) -> Path:
    suite = tmp_path / "s.suite.yaml"
    suite.write_text(SUITE)
    return suite
