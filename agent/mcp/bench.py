"""Round trips through ``deskhand mcp`` beside the same actions through the loop directly.

Both sides run on a local Xvfb desktop in the same run, with the default
policy and a real audit log.  The loop side is what ``deskhand run`` does per
step (validate, decide, record intent, execute, settle, record result); the
MCP side adds the client SDK, JSON-RPC over stdio, the worker hand-off and
encoding the screenshot for the client.  Perception is off on both sides so
that the figures compare the plumbing; one more figure shows a click with the
injection guard reading every new frame, as MCP sessions run by default.

A click on the bare desktop changes nothing, so both sides wait out the
settle's change window (about a second); the difference between them is
what MCP adds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, StepReport
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Action, Click, Screenshot
from sandbox.base import Frame, Size

ROUNDS = 30
SIZE = Size(1280, 800)
CLICK_AT = (600, 700)


class _ListPlanner:
    name = "bench"
    model = "list"

    def __init__(self, actions: list[Action]) -> None:
        self._actions = iter(actions)

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        action = next(self._actions, None)
        return Turn(finished="done") if action is None else Turn(
            actions=[ProposedAction(action=action)])


class _Steps:
    def __init__(self) -> None:
        self.reports: list[StepReport] = []

    def on_step(self, report: StepReport) -> None:
        self.reports.append(report)

    def on_turn(self, turn: Turn) -> None:
        pass

    def on_frame(self, frame: Frame) -> None:
        pass


def loop_step_ms(action: Action, rounds: int, workdir: Path) -> list[float]:
    """``rounds`` copies of ``action`` through the real loop on a local desktop."""
    from sandbox.local import LocalSandbox

    steps = _Steps()
    with AuditLog.open(workdir / "loop.db") as log, LocalSandbox(size=SIZE) as box:
        AgentLoop(sandbox=box, planner=_ListPlanner([action] * rounds),
                  policy=load_profile("default"), audit=log, approver=BrokerApprover(log),
                  reporter=steps, config=LoopConfig(max_turns=rounds + 2,
                                                    approval_timeout_s=0)).run("benchmark")
    return [r.elapsed_ms for r in steps.reports if r.status == "done"]


async def mcp_call_ms(calls: list[tuple[str, dict[str, Any]]], db: Path, *,
                      perception: bool = False) -> list[list[float]]:
    """Each call's client-side round trip through ``deskhand mcp`` over stdio, in order."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    args = ["-m", "agent", "mcp", "--sandbox", "local", "--screen", str(SIZE),
            "--db", str(db), "--perception" if perception else "--no-perception"]
    params = StdioServerParameters(command=sys.executable, args=args)
    timings: list[list[float]] = [[] for _ in calls]
    with open(db.with_suffix(".log"), "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("screenshot", {})  # the desktop starts on first use
            for _ in range(ROUNDS):
                for index, (tool, arguments) in enumerate(calls):
                    timings[index].append(await _timed(session.call_tool, tool, arguments))
    return timings


async def _timed(call: Callable[[str, dict[str, Any]], Awaitable[Any]], tool: str,
                 arguments: dict[str, Any]) -> float:
    started = time.perf_counter()
    result = await call(tool, arguments)
    if getattr(result, "isError", False):
        raise RuntimeError(f"benchmark call failed: {result.content}")
    return (time.perf_counter() - started) * 1000


def run_benchmarks() -> list[dict[str, Any]]:
    click: dict[str, Any] = {"type": "click", "x": CLICK_AT[0], "y": CLICK_AT[1]}
    calls: list[tuple[str, dict[str, Any]]] = [("screenshot", {}), ("computer", {"action": click}),
             ("computer", {"action": click, "screenshot": False})]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        loop_shot = loop_step_ms(Screenshot(), ROUNDS, work)
        loop_click = loop_step_ms(Click(x=CLICK_AT[0], y=CLICK_AT[1]), ROUNDS, work)
        shot, click_image, click_bare = anyio.run(lambda: mcp_call_ms(calls, work / "mcp.db"))
        (guarded,) = anyio.run(lambda: mcp_call_ms(calls[2:], work / "guard.db",
                                                   perception=True))
    return [
        _p50("mcp.screenshot_roundtrip", shot, loop_shot, "loop.screenshot_step"),
        _p50("mcp.click_roundtrip_with_screenshot", click_image, loop_click, "loop.click_step"),
        _p50("mcp.click_roundtrip", click_bare, loop_click, "loop.click_step"),
        _p50("mcp.click_roundtrip_injection_guard", guarded, loop_click, "loop.click_step"),
    ]


def _p50(name: str, values: list[float], baseline: list[float],
         baseline_name: str) -> dict[str, Any]:
    return {"name": f"{name}.p50", "value": round(statistics.median(values), 2), "unit": "ms",
            "n": len(values), "baseline": round(statistics.median(baseline), 2),
            "baseline_name": f"{baseline_name}.p50", "target": None}
