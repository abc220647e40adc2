"""The example suites pass on both sandboxes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "suites"


def run_examples(output: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "test", str(EXAMPLES), "--output",
                           str(output), *flags], capture_output=True, text=True, timeout=900)


@pytest.mark.docker
@pytest.mark.slow
def test_examples_pass_on_docker(tmp_path: Path, desktop_image: str) -> None:
    done = run_examples(tmp_path / "out", "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 cases: 8 passed" in done.stdout


@pytest.mark.x11
@pytest.mark.slow
def test_examples_pass_on_the_local_sandbox(tmp_path: Path) -> None:
    missing = [app for app in ("xterm", "mousepad", "galculator", "pcmanfm")
               if shutil.which(app) is None]
    if missing:
        pytest.skip(f"the host lacks {', '.join(missing)} (scripts/debian-packages.txt)")
    done = run_examples(tmp_path / "out", "--sandbox", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 cases: 8 passed" in done.stdout
