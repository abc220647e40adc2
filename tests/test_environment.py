"""The processes tests start can be stopped with Ctrl-C, however the test run was started
(tests/conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import sys

PRINT_SIGINT = "import signal; print(signal.getsignal(signal.SIGINT))"


def test_this_process_turns_sigint_into_keyboard_interrupt() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_child_python_turns_sigint_into_keyboard_interrupt() -> None:
    out = subprocess.run([sys.executable, "-c", PRINT_SIGINT], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert out.strip() == "<built-in function default_int_handler>"
