"""Per action: deskhand's two settle profiles beside the reference harness, in one run.

The reference harness is Anthropic's computer-use demo as it really behaves:
a fresh ``xdotool`` process per action, a fixed 2 s sleep after clicks, keys,
scrolls and pointer moves (none after typing), then a fresh screenshot
process.  deskhand: ``sandbox.execute`` on the local sandbox, which settles
following the ``fast`` profile (scripts, suites) or the ``model`` profile
(model planners), and returns the settled frame.

Cases, in a terminal: typing (the screen changes at once), Enter (a new
prompt), a pointer move, a scroll and a click that change nothing; a click
that changes nothing must cost at most 300 ms on the fast profile.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.steps import SIZE, figures, percentile, plain_display
from sandbox.actions import Action, Click, Key, MouseMove, Scroll, TypeText
from sandbox.base import Sandbox

REFERENCE_SLEEP_S = 2.0
CLICK_NOTHING_TARGET_MS = 300

Place = tuple[int, int]
CASES: dict[str, Callable[[Place, int], Action]] = {
    "type": lambda at, i: TypeText(text="abc"),
    "key_enter": lambda at, i: Key(keys=["enter"]),
    "mouse_move_nothing": lambda at, i: MouseMove(x=at[0] + 10 * (1 + i % 2), y=at[1]),
    "scroll_nothing": lambda at, i: Scroll(x=at[0], y=at[1], dy=1 - 2 * (i % 2)),
    "click_nothing": lambda at, i: Click(x=at[0], y=at[1]),
}


def deskhand_per_action(box: Sandbox, profile: str, samples: int) -> dict[str, list[float]]:
    """Milliseconds per ``sandbox.execute`` of each case, settling with ``profile``."""
    place = open_terminal(box)
    timings: dict[str, list[float]] = {}
    for case, build in CASES.items():
        timings[case] = []
        for index in range(samples):
            started = time.perf_counter()
            box.execute(build(place, index), settle_profile=profile)
            timings[case].append((time.perf_counter() - started) * 1000)
    return timings


def open_terminal(box: Sandbox) -> Place:
    """Open xterm and return a blank spot near the bottom of it."""
    box.execute(Key(keys=["ctrl", "alt", "t"]), settle_profile="model")
    give_up = time.monotonic() + 20
    while box.screenshot().window_title != "xterm":
        if time.monotonic() > give_up:
            raise RuntimeError("the terminal did not open")
        time.sleep(0.05)
    shell = box.check(["xdotool", "getactivewindow", "getwindowgeometry", "--shell"]).stdout
    geometry = dict(line.split("=", 1) for line in shell.split() if "=" in line)
    if not {"X", "Y", "WIDTH", "HEIGHT"} <= set(geometry):
        return SIZE.width // 2, SIZE.height // 2
    return (int(geometry["X"]) + int(geometry["WIDTH"]) // 2,
            int(geometry["Y"]) + int(geometry["HEIGHT"]) - 20)


def reference_per_action(display: str, samples: int) -> dict[str, list[float]]:
    """Milliseconds per action the reference harness's way (see the module docstring)."""
    env = {**os.environ, "DISPLAY": display}
    shot = Path(tempfile.mkdtemp()) / "shot.png"
    place = (SIZE.width // 2, SIZE.height // 2)
    timings: dict[str, list[float]] = {}
    try:
        for case, build in CASES.items():
            timings[case] = []
            for index in range(samples):
                action = build(place, index)
                started = time.perf_counter()
                subprocess.run(xdotool_argv(action), env=env, check=True, capture_output=True)
                if not isinstance(action, TypeText):
                    time.sleep(REFERENCE_SLEEP_S)
                subprocess.run(["scrot", "-o", str(shot)], env=env, check=True,
                               capture_output=True)
                shot.read_bytes()
                timings[case].append((time.perf_counter() - started) * 1000)
    finally:
        shutil.rmtree(shot.parent, ignore_errors=True)
    return timings


def xdotool_argv(action: Action) -> list[str]:
    """The demo's xdotool command line for one action."""
    if isinstance(action, TypeText):
        return ["xdotool", "type", "--delay", "12", "--", action.text]
    if isinstance(action, Key):
        return ["xdotool", "key", "Return" if action.keys == ["enter"] else "+".join(action.keys)]
    if isinstance(action, MouseMove):
        return ["xdotool", "mousemove", "--sync", str(action.x), str(action.y)]
    if isinstance(action, Scroll):
        return ["xdotool", "mousemove", str(action.x), str(action.y), "click",
                "5" if action.dy > 0 else "4"]
    assert isinstance(action, Click)
    assert action.x is not None
    assert action.y is not None
    return ["xdotool", "mousemove", str(action.x), str(action.y), "click", "1"]


def run_benchmarks(samples: int = 10, reference_samples: int = 3) -> list[dict[str, Any]]:
    from sandbox.local import LocalSandbox

    ours: dict[str, dict[str, list[float]]] = {}
    for profile in ("fast", "model"):
        with LocalSandbox(size=SIZE) as box:
            ours[profile] = deskhand_per_action(box, profile, samples)
    with plain_display() as display:
        reference = reference_per_action(display, reference_samples)
    rows: list[dict[str, Any]] = []
    for case in CASES:
        baseline = statistics.median(reference[case])
        rows += _with_baseline(figures(f"per_action.reference.{case}", reference[case]), None)
        for profile, timings in ours.items():
            target = CLICK_NOTHING_TARGET_MS if (case, profile) == ("click_nothing", "fast") \
                else None
            rows += _with_baseline(figures(f"per_action.deskhand_{profile}.{case}",
                                           timings[case], target_p50=target,
                                           target_p95=target), baseline)
            rows.append({"name": f"per_action.deskhand_{profile}.{case}.speedup_p50",
                         "value": round(baseline / statistics.median(timings[case]), 1),
                         "unit": "x", "p95_ms": round(percentile(timings[case], 95), 1)})
    return rows


def _with_baseline(rows: list[dict[str, Any]], baseline: float | None) -> list[dict[str, Any]]:
    if baseline is None:
        return rows
    return [{**row, "baseline": round(baseline, 2)} for row in rows]
