"""The loop's view of perception: triage a task, assess a frame for injection.

:class:`Perception` satisfies ``agent.loop.Perceiver``.  Build it once at the
edge (loading the models takes about a second) and pass it to the loop::

    perception = Perception.load()
    triage = perception.triage("Email the report to Ana")
    risk, reason = perception.injection_risk(frame, task)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.perception.injection import InjectionGuard
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.screen import ScreenParser
from agent.perception.triage import CentroidTriager, Triager
from policies.decision import Triage
from sandbox.base import Frame


@dataclass(slots=True)
class Perception:
    """A screen parser, a triager and an injection guard, used together."""

    parser: ScreenParser
    triager: Triager
    guard: InjectionGuard = field(default_factory=InjectionGuard)

    @classmethod
    def load(cls, *, ocr_threads: int = 2) -> Perception:
        """The defaults: RapidOCR parser and WordLlama triager, both offline."""
        return cls(parser=OcrScreenParser(RapidOcrReader.load(threads=ocr_threads)),
                   triager=CentroidTriager.load())

    def triage(self, task: str) -> Triage | None:
        return self.triager.classify(task)

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        assessment = self.guard.assess(self.parser.parse(frame), task)
        return assessment.risk, assessment.reason
