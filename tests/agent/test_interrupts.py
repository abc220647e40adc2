"""The stop handlers: the first signal interrupts, the next two are ignored while the
clean-up runs, a fourth ends a hung clean-up outright."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

PROGRAM = """
import os, signal, sys
from agent.interrupts import Interrupted, stop_on_signals
extra = int(sys.argv[1])
with stop_on_signals(notice=lambda text: print("noted:", text, flush=True)):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
    except Interrupted as exc:
        print("interrupted by", exc.cause, flush=True)
        for _ in range(extra):  # impatient signals while cleaning up
            os.kill(os.getpid(), signal.SIGINT)
        print("cleaned up", flush=True)
sys.exit(130)
"""


def run(extra_signals: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, str(extra_signals)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_signals_during_clean_up_are_noted_and_ignored(extra: int) -> None:
    proc = run(extra)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "interrupted by SIGTERM" in proc.stdout
    assert proc.stdout.count("already stopping") == extra
    assert "cleaned up" in proc.stdout


def test_a_fourth_signal_ends_a_hung_clean_up() -> None:
    proc = run(3)
    assert proc.returncode == -signal.SIGINT
    assert "forced to stop" in proc.stdout
    assert "cleaned up" not in proc.stdout
