"""Commands that need no model, OCR, Docker or TUI do not import them: `deskhand --help`,
`--version`, `policy check/explain`, `sessions` and `audit verify` start at once.

Which modules a command loaded is deterministic, unlike its start-up time (measured by
`make bench`, benchmarks/startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("anthropic", "openai", "onnxruntime", "rapidocr_onnxruntime", "wordllama", "docker",
         "numpy", "cv2", "textual", "sqlalchemy", "pydantic_settings")

PROBE = """
import json, sys
from agent.cli import main
sys.argv = ["deskhand", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("LOADED-MODULES " + json.dumps(loaded), file=sys.stderr)
"""


def heavy_modules_after(tmp_path: Path, *args: str) -> list[str]:
    code = PROBE.replace("HEAVY", repr(HEAVY))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "DESKHAND_HOME": str(tmp_path)})
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("LOADED-MODULES ")]
    loaded: list[str] = json.loads(line.removeprefix("LOADED-MODULES "))
    return loaded


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    db = home / "audit.db"
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--script", str(ROOT / "examples" /
         "terminal-note.yaml"), "--sandbox", "fake", "--no-perception", "--db", str(db)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return db


@pytest.mark.parametrize("args", [
    ["--help"], ["--version"], ["run", "--help"], ["tui", "--help"], ["sandbox", "--help"],
    ["policy", "check", "default"],
    ["policy", "explain", "default", '{"type": "type", "text": "sudo rm -rf /"}'],
])
def test_commands_that_need_no_model_load_none(tmp_path: Path, args: list[str]) -> None:
    assert heavy_modules_after(tmp_path, *args) == []


@pytest.mark.parametrize("args", [["sessions"], ["audit", "verify"], ["audit", "head"]])
def test_reading_a_small_log_loads_no_heavy_module(tmp_path: Path, small_log: Path,
                                                   args: list[str]) -> None:
    assert heavy_modules_after(tmp_path, *args, "--db", str(small_log)) == []
