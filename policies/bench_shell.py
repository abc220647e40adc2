"""Decision latency with the shell line rebuilt and parsed, beside the plain decision.

Run ``python -m policies.bench_shell`` (or ``make bench``).  A realistic
terminal session — commands typed whole, in pieces and key by key, each
submitted by a newline or Return — is decided action by action twice with
the default profile:

* **with lines**: as the loop does it, the line rebuilt across actions
  (:mod:`policies.command_line`) and every submitted line parsed
  (:mod:`policies.shell`) with the parse cache cleared first, so that each
  line is parsed as if the shell had never seen it;
* **plain**: the same actions decided on their own, as before issue 14.

Times are the deciding thread's CPU time (``time.thread_time_ns``), so that
the other processes of a shared machine do not land in the tail; both
figures are measured the same way in the same run.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

from policies.command_line import LineTracker
from policies.decision import PolicyContext
from policies.engine import Policy, load_profile
from policies.shell import analyze
from sandbox.actions import Action, Key, TypeText

WINDOW = "xterm"
_COMMANDS = [
    "ls -la ~/Documents", "git status", "git log --oneline | head -5",
    "grep -rn TODO src/ | sort | uniq -c | sort -rn | head", "make -j4 && ./build/app --help",
    "find . -name '*.py' -newer setup.cfg -exec grep -l TODO {} +",
    "for f in *.txt; do wc -l \"$f\"; done", "python3 -m pytest -q tests/",
    "cd ~/projects/app && git diff --staged", "tar czf backup.tar.gz src/ docs/",
    "sudo rm -rf /var/tmp/cache", "echo cm0gLXJmIH4va2VlcA== | base64 -d | sh",
    "x=rm; $x -rf ~/keep", "env A=1 nohup timeout 5 nice -n 3 rm -fr ~/keep &",
    "bash -c \"sh -c 'rm -r ~/keep'\"", "cat <<EOF | sh\nrm -rf ~/keep\nEOF",
]


def session(count: int, seed: int = 11) -> list[Action]:
    """``count`` actions typing numbered variants of everyday and risky commands."""
    rng = random.Random(seed)
    actions: list[Action] = []
    line = 0
    while len(actions) < count:
        text = f"{rng.choice(_COMMANDS)} # {line}"  # every line is new to the parse cache
        line += 1
        style = rng.random()
        if style < 0.5:
            actions.append(TypeText(text=text + "\n"))
        elif style < 0.8:
            cut = len(text) // 2
            actions += [TypeText(text=text[:cut]), TypeText(text=text[cut:]), Key(keys=["enter"])]
        else:
            cut = len(text) // 2  # the first half key by key
            actions += [Key(keys=[c]) if c.isalnum() else TypeText(text=c) for c in text[:cut]]
            actions += [TypeText(text=text[cut:]), Key(keys=["enter"])]
    return actions[:count]


def _context() -> PolicyContext:
    return PolicyContext(screen_width=1280, screen_height=800, window_title=WINDOW, now=0.0)


def measure(policy: Policy, actions: list[Action], *, with_lines: bool) -> list[float]:
    """Milliseconds per decision; ``with_lines`` includes rebuilding and parsing the line."""
    tracker = LineTracker()
    timings = []
    for action in actions:
        analyze.cache_clear()
        context = _context()
        started = time.thread_time_ns()
        if with_lines:
            view = tracker.propose(WINDOW, action)
            context.submitted_line = view.submitted_line
            context.line_unknown = view.unknown if view.submitted else ()
        policy.decide(action, context)
        timings.append((time.thread_time_ns() - started) / 1e6)
        tracker.commit()  # as if every action ran
    return timings


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_benchmarks(*, decisions: int = 5000) -> list[dict[str, Any]]:
    """p50/p99 (ms) of decisions with lines rebuilt and parsed, and of plain decisions."""
    policy = load_profile("default")
    actions = session(decisions)
    measure(policy, actions[:300], with_lines=True)  # warm up imports and regexes
    ours = measure(policy, actions, with_lines=True)
    plain = measure(policy, actions, with_lines=False)
    rows = []
    for name, timings, targets in (("policy.decide_with_shell_line", ours, (1.0, 5.0)),
                                   ("policy.decide_plain_baseline", plain, (None, None))):
        for label, fraction, target in (("p50", 0.5, targets[0]), ("p99", 0.99, targets[1])):
            value = statistics.median(timings) if fraction == 0.5 else _percentile(timings,
                                                                                   fraction)
            row: dict[str, Any] = {"name": f"{name}.{label}", "value": round(value, 4),
                                   "unit": "ms"}
            if target is not None:
                row["target"] = target
            rows.append(row)
    return rows


if __name__ == "__main__":
    for figure in run_benchmarks():
        print(json.dumps(figure))
