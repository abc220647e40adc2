"""Start-up time of the commands a user types without thinking, to their first output.

Each command runs as a fresh process (``python -m agent ...``), the clock
stopping at the first byte it prints; ``python -c pass`` (to its exit) is
the floor measured in the same run, interleaved so that both see the same
machine load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "terminal-note.yaml"
TARGET_MS = 300
ROUNDS = 7


def _first_output_ms(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, env=env) as proc:
        assert proc.stdout is not None
        proc.stdout.read(1)
        elapsed = (time.perf_counter() - started) * 1000
        proc.stdout.read()
        proc.wait()
    return elapsed


def _commands(db: Path) -> dict[str, list[str]]:
    return {
        "help": ["--help"],
        "version": ["--version"],
        "policy_explain": ["policy", "explain", "default",
                           '{"type": "key", "keys": ["alt", "f4"]}'],
        "sessions": ["sessions", "--db", str(db)],
        "audit_verify": ["audit", "verify", "--db", str(db)],
        "run_fake": ["run", "--script", str(DEMO), "--sandbox", "fake", "--db", str(db)],
    }


def run_benchmarks(rounds: int = ROUNDS) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DESKHAND_HOME": home}
        db = Path(home) / "audit.db"
        subprocess.run([sys.executable, "-m", "agent", *_commands(db)["run_fake"],
                        "--no-perception"], capture_output=True, env=env, check=True)
        commands = _commands(db)
        samples: dict[str, list[float]] = {name: [] for name in ["python_c_pass", *commands]}
        for _ in range(rounds):
            samples["python_c_pass"].append(
                _first_output_ms([sys.executable, "-c", "print()"], env))
            for name, args in commands.items():
                samples[name].append(_first_output_ms([sys.executable, "-m", "agent", *args], env))
    floor = statistics.median(samples["python_c_pass"])
    rows = [{"name": "startup.python_c_pass.p50", "value": round(floor, 1), "unit": "ms",
             "n": rounds}]
    for name in commands:
        value = round(statistics.median(samples[name]), 1)
        rows.append({"name": f"startup.{name}.p50", "value": value,
                     "unit": "ms", "n": rounds, "target": TARGET_MS,
                     "baseline": {"python_c_pass": round(floor, 1)}})
    return rows
