"""What the second gate costs each command an interactive shell runs (local sandbox).

- ``gate.per_command``: a loop of 100 ``:`` commands typed into the desktop's
  xterm, whose bash asks the gate before each of its 200 simple commands
  (the judge answers at once, as the policy does in well under a
  millisecond); milliseconds per gated command.
- ``gate.ungated_per_command``: the same loop in a non-interactive
  ``bash -c`` in the same sandbox, which has no gate: the baseline.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.actions import Key, TypeText
from sandbox.local import LocalSandbox

LOOP = "for i in $(seq 100); do :; done"
COMMANDS = 200  # the for header and the body, 100 times each


def _wait_for(condition: Any, timeout_s: float = 60.0) -> Any:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("the desktop did not get there in time")


def _gated_seconds(box: LocalSandbox) -> float:
    box.execute(Key(keys=["ctrl", "alt", "t"]))
    _wait_for(lambda: box.screenshot().window_title == "xterm")
    box.execute(TypeText(text=f"TIMEFORMAT=%R; {{ time ({LOOP}) ; }} 2> ~/gate-time.txt\n"))
    return float(_wait_for(lambda: box.check(["cat", "gate-time.txt"]).stdout.strip()))


def _ungated_seconds(box: LocalSandbox) -> float:
    result = box.check(["bash", "-c", f"TIMEFORMAT=%R; {{ time ({LOOP}) ; }} 2>&1"])
    return float(result.stdout.strip())


def run_benchmarks() -> list[dict[str, Any]]:
    with LocalSandbox() as box:
        if not box.isolated:
            return [{"name": "gate.per_command", "error": "no bubblewrap: no gate to measure"}]
        box.serve_shell_gate(lambda line: (True, "benchmark"))
        gated, ungated = _gated_seconds(box), _ungated_seconds(box)
    return [
        {"name": "gate.per_command", "value": round(gated / COMMANDS * 1000, 3), "unit": "ms",
         "target": 5.0},
        {"name": "gate.ungated_per_command", "value": round(ungated / COMMANDS * 1000, 4),
         "unit": "ms"},
    ]
