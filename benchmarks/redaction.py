"""What frame redaction costs per step, beside the same steps without it, in one run.

On one local Xvfb desktop, the same typing steps in a terminal run through
the real loop twice: first without a frame guard (the baseline), then with
the :class:`~agent.perception.redaction.FrameRedactor` (real OCR on the
changed regions, one known secret value to hunt for, every detector).

* ``redaction.per_changed_frame``: the redactor's own time on frames that
  differ from the one before (the OCR re-reads what changed).
* ``redaction.step_with`` / ``redaction.step_without``: the whole step
  (validate to recorded result) with and without it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from agent.approvals import BrokerApprover
from agent.frame_guard import GuardedFrame
from agent.loop import AgentLoop, LoopConfig
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.redaction import FrameRedactor
from audit.log import AuditLog
from benchmarks import steps
from policies.engine import load_profile
from sandbox.base import Frame, Sandbox

KNOWN_SECRET = "tangerine-velvet-42-orbit"


class _TimedGuard:
    """The redactor, remembering its time on each frame that changed."""

    def __init__(self, redactor: FrameRedactor) -> None:
        self.redactor = redactor
        self.changed_ms: list[float] = []
        self._last = ""

    def remember_secret(self, text: str) -> None:
        self.redactor.remember_secret(text)

    def guard(self, frame: Frame, *, typed_secret: bool = False) -> GuardedFrame:
        guarded = self.redactor.guard(frame, typed_secret=typed_secret)
        if frame.sha256 != self._last:
            self.changed_ms.append(guarded.redact_ms)
        self._last = frame.sha256
        return guarded


def _step_ms(box: Sandbox, count: int, db: Path, guard: _TimedGuard | None) -> list[float]:
    collector = steps._Collector()
    with AuditLog.open(db) as log:
        loop = AgentLoop(sandbox=box, planner=steps._ListPlanner(steps.step_actions(count)),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), reporter=collector, frame_guard=guard,
                         config=LoopConfig(max_turns=count + 5, approval_timeout_s=0))
        loop.run("benchmark: type into a terminal")
    return [r.elapsed_ms for r in collector.reports[1:] if r.status == "done"]


def run_benchmarks(count: int = 30) -> list[dict[str, Any]]:
    from sandbox.local import LocalSandbox

    reader = RapidOcrReader.load(threads=2)
    guard = _TimedGuard(FrameRedactor(OcrScreenParser(reader), secrets=[KNOWN_SECRET]))
    with tempfile.TemporaryDirectory() as tmp, LocalSandbox(size=steps.SIZE) as box:
        without = _step_ms(box, count, Path(tmp) / "without.db", None)
        with_guard = _step_ms(box, count, Path(tmp) / "with.db", guard)
    guard.redactor.close()
    return [*steps.figures("redaction.per_changed_frame", guard.changed_ms[1:],
                           target_p50=150, target_p95=400),
            *steps.figures("redaction.step_with", with_guard),
            *steps.figures("redaction.step_without", without)]
