"""Per-step overhead of deskhand's pipeline against the naive way, in one run.

deskhand: validate, decide, record intent, execute in the long-lived executor,
settle adaptively, screenshot, record result — everything except planning.

Naive: what the best-known reference harness does per action: a fresh
``xdotool`` process, a fixed 2 s sleep after keys (none after typing, as
the harness does), a fresh ``scrot`` screenshot.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, StepReport
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Action, Key, TypeText
from sandbox.base import Sandbox, Size

NAIVE_SLEEP_S = 2.0
SIZE = Size(1280, 800)


def step_actions(count: int) -> list[Action]:
    """Immediate-effect actions in a terminal: typing letters, then Enter now and then."""
    actions: list[Action] = [Key(keys=["ctrl", "alt", "t"])]
    for index in range(count):
        if index % 10 == 9:
            actions.append(Key(keys=["enter"]))
        else:
            actions.append(TypeText(text="abcdefghij"[index % 10]))
    return actions


class _ListPlanner:
    name = "bench"
    model = "list"

    def __init__(self, actions: list[Action]) -> None:
        self._actions = iter(actions)

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        action = next(self._actions, None)
        if action is None:
            return Turn(finished="done")
        return Turn(actions=[ProposedAction(action=action)])


class _Collector:
    def __init__(self) -> None:
        self.reports: list[StepReport] = []

    def on_step(self, report: StepReport) -> None:
        self.reports.append(report)

    def on_turn(self, turn: Turn) -> None:
        pass

    def on_frame(self, frame: Any) -> None:
        pass


def deskhand_step_ms(sandbox: Sandbox, steps: int, workdir: Path) -> list[float]:
    """Run ``steps`` actions through the real loop; return per-step milliseconds."""
    collector = _Collector()
    with AuditLog.open(workdir / "bench.db") as log:
        loop = AgentLoop(sandbox=sandbox, planner=_ListPlanner(step_actions(steps)),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), reporter=collector,
                         config=LoopConfig(max_turns=steps + 5, approval_timeout_s=0))
        summary = loop.run("benchmark: type into a terminal")
    if summary.executed < steps:
        raise RuntimeError(f"benchmark run executed {summary.executed}/{steps + 1} steps: "
                           f"{summary.reason}")
    # The first step opens the terminal; its settle includes starting xterm.
    return [r.elapsed_ms for r in collector.reports[1:] if r.status == "done"]


@contextmanager
def plain_display() -> Iterator[str]:
    """A bare Xvfb + openbox + xterm for the naive harness, which needs a reachable display."""
    display = f":{_free_display()}"
    procs = [subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SIZE}x24", "-noreset",
                               "-nolisten", "tcp"], stderr=subprocess.DEVNULL)]
    env = {**os.environ, "DISPLAY": display}
    try:
        _wait_for_display(env)
        procs.append(subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["xterm"], env=env, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        yield display
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=5)


def _free_display() -> int:
    for number in range(140, 400):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and \
                not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number")


def _wait_for_display(env: dict[str, str]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("Xvfb did not start")


def naive_step_ms(display: str, steps: int) -> list[float]:
    """The reference harness's way: xdotool + scrot processes and a fixed sleep per action."""
    env = {**os.environ, "DISPLAY": display}
    shot = Path(tempfile.mkdtemp()) / "shot.png"
    timings = []
    for action in step_actions(steps)[1:]:
        started = time.perf_counter()
        subprocess.run(_xdotool_argv(action), env=env, check=True, capture_output=True)
        if not isinstance(action, TypeText):  # the reference harness does not sleep after typing
            time.sleep(NAIVE_SLEEP_S)
        subprocess.run(["scrot", "-o", str(shot)], env=env, check=True, capture_output=True)
        shot.read_bytes()
        timings.append((time.perf_counter() - started) * 1000)
    shutil.rmtree(shot.parent, ignore_errors=True)
    return timings


def _xdotool_argv(action: Action) -> list[str]:
    if isinstance(action, TypeText):
        return ["xdotool", "type", "--", action.text]
    assert isinstance(action, Key)
    return ["xdotool", "key", "Return" if action.keys == ["enter"] else "+".join(action.keys)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def figures(name: str, values: list[float], *, target_p50: float | None = None,
            target_p95: float | None = None) -> list[dict[str, Any]]:
    return [
        {"name": f"{name}.p50", "value": round(statistics.median(values), 2), "unit": "ms",
         "n": len(values), "target": target_p50},
        {"name": f"{name}.p95", "value": round(percentile(values, 95), 2), "unit": "ms",
         "n": len(values), "target": target_p95},
    ]
