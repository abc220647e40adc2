"""Perception's cost per step when the model's planning time hides it, and peak memory.

A local-sandbox run types into a terminal through the real loop, with a planner
that takes ``MODEL_S`` per turn (a model's latency, spent waiting as a model
client does).  Per-step time (validate, decide, execute, settle, record; not
planning) is measured with perception off and on; with it on, each new
frame's injection reading runs on a worker while the planner waits, so the
step should cost at most 250 ms more at p95.  Peak RSS is the whole process's,
perception models included (target 350 MiB).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, Perceiver
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from benchmarks.steps import SIZE, _Collector, figures, percentile
from policies.engine import load_profile
from sandbox.actions import Action, Key, TypeText

MODEL_S = 2.0
STEPS = 10


class SlowPlanner:
    """Types a line per turn after thinking for ``MODEL_S``, like a model would."""

    name = "slow"
    model = "simulated"

    def __init__(self, actions: list[Action]) -> None:
        self._actions = iter(actions)

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        time.sleep(MODEL_S)
        action = next(self._actions, None)
        return Turn(finished="done") if action is None else \
            Turn(actions=[ProposedAction(action=action)])


def step_ms(perceiver: Perceiver | None) -> list[float]:
    from sandbox.local import LocalSandbox

    actions: list[Action] = [Key(keys=["ctrl", "alt", "t"])]
    actions += [TypeText(text=f"echo step {n} of the quarterly report\n") for n in range(STEPS)]
    collector = _Collector()
    with tempfile.TemporaryDirectory() as tmp, LocalSandbox(size=SIZE) as box, \
            AuditLog.open(Path(tmp) / "bench.db") as log:
        loop = AgentLoop(sandbox=box, planner=SlowPlanner(actions),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), reporter=collector, perceiver=perceiver,
                         config=LoopConfig(max_turns=STEPS + 5, approval_timeout_s=0,
                                           settle_profile="model"))
        loop.run("benchmark: type into a terminal")
    return [r.elapsed_ms for r in collector.reports[1:] if r.status == "done"]


def run_benchmarks() -> list[dict[str, Any]]:
    from agent.perception.background import BackgroundPerception
    from agent.runs import LazyPerception

    without = step_ms(None)
    lazy = LazyPerception()
    perception = BackgroundPerception(lazy, warm_up=lazy.load_reader)
    with_perception = step_ms(perception)
    perception.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    extra = percentile(with_perception, 95) - percentile(without, 95)
    rows = figures("perception.step_without", without)
    rows += figures("perception.step_with_background_reading", with_perception)
    rows.append({"name": "perception.step_p95_extra", "value": round(extra, 1), "unit": "ms",
                 "target": 250, "baseline": round(percentile(without, 95), 1)})
    rows.append({"name": "perception.peak_rss_model_run", "value": round(peak, 1),
                 "unit": "MiB", "target": 350})
    return rows
