"""Decision latency of the default profile over a realistic mix of actions.

Run ``python -m policies.bench``; :func:`run_benchmarks` returns one dict per
figure (``name``, ``value``, ``unit``, ``target``) for the project's benchmark
report.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

from policies.decision import PolicyContext, Triage
from policies.engine import Policy, load_profile
from sandbox.actions import Action, parse_action

# Roughly what an agent session looks like: mostly looking and pointing,
# some typing and keys, a few actions that rules single out.
_MIX: list[tuple[int, dict[str, Any]]] = [
    (20, {"type": "screenshot"}),
    (4, {"type": "cursor_position"}),
    (3, {"type": "zoom", "x0": 100, "y0": 100, "x1": 400, "y1": 300}),
    (4, {"type": "wait", "seconds": 1}),
    (8, {"type": "mouse_move", "x": 640, "y": 400}),
    (20, {"type": "click", "x": 320, "y": 240}),
    (3, {"type": "click", "x": 1270, "y": 8}),
    (4, {"type": "click", "x": 500, "y": 300, "count": 2}),
    (6, {"type": "scroll", "x": 640, "y": 400, "dy": 3}),
    (2, {"type": "drag", "path": [{"x": 10, "y": 10}, {"x": 300, "y": 200}]}),
    (10, {"type": "type", "text": "quarterly report draft for the team"}),
    (3, {"type": "type", "text": "ls -la ~/Documents && cat notes.txt\n"}),
    (1, {"type": "type", "text": "sudo rm -rf /var/tmp/cache\n"}),
    (1, {"type": "type", "text": "export KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"}),
    (8, {"type": "key", "keys": ["ctrl", "s"]}),
    (3, {"type": "key", "keys": ["enter"]}),
    (1, {"type": "key", "keys": ["alt", "f4"]}),
]


def _actions(count: int, seed: int) -> list[Action]:
    weights = [w for w, _ in _MIX]
    parsed = [parse_action(data) for _, data in _MIX]
    return random.Random(seed).choices(parsed, weights=weights, k=count)


def _context(index: int) -> PolicyContext:
    return PolicyContext(
        screen_width=1280, screen_height=800, window_title="notes.txt - Text Editor",
        step_index=index % 400, elapsed_s=float(index % 3000), typed_chars=index % 5000,
        recent_action_times=[float(t) for t in range(100, 140)], now=150.0,
        triage=Triage(category="documents", risk="low", confidence=0.9),
        injection_risk=0.05,
    )


def measure_decisions(policy: Policy, decisions: int, seed: int = 7) -> list[float]:
    """Wall time of each of ``decisions`` decisions, in milliseconds."""
    actions = _actions(decisions, seed)
    contexts = [_context(i) for i in range(decisions)]
    for action, context in zip(actions[:200], contexts, strict=False):
        policy.decide(action, context)  # warm caches before timing
    timings = []
    for action, context in zip(actions, contexts, strict=True):
        started = time.perf_counter_ns()
        policy.decide(action, context)
        timings.append((time.perf_counter_ns() - started) / 1e6)
    return timings


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_benchmarks(*, decisions: int = 20_000) -> list[dict[str, Any]]:
    """Decision latency p50/p95 (ms) and profile load time with the default profile."""
    started = time.perf_counter()
    policy = load_profile("default")
    load_ms = (time.perf_counter() - started) * 1000
    timings = measure_decisions(policy, decisions)
    return [
        {"name": "policy.decide.p50", "value": round(statistics.median(timings), 4),
         "unit": "ms", "target": 0.2},
        {"name": "policy.decide.p95", "value": round(_percentile(timings, 0.95), 4),
         "unit": "ms", "target": 0.5},
        {"name": "policy.load_profile", "value": round(load_ms, 2), "unit": "ms", "target": 50.0},
    ]


if __name__ == "__main__":
    print(json.dumps(run_benchmarks(), indent=2))
