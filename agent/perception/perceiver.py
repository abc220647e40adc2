"""The loop's view of perception: triage a task, assess a frame for injection.

:class:`Perception` satisfies ``agent.loop.Perceiver``.  Build it once at the
edge (loading the models takes about a second) and pass it to the loop::

    perception = Perception.load()
    triage = perception.triage("Email the report to Ana")
    risk, reason = perception.injection_risk(frame, task)

Both fail closed: a triager that cannot answer yields category ``unknown``
at high risk, and a frame that cannot be read scores injection risk 1.0 with
the reason, so the policy asks the human instead of assuming all is well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.perception import textmatch
from agent.perception.errors import PerceptionError
from agent.perception.injection import InjectionGuard
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.screen import ScreenParser, TextElement
from agent.perception.triage import CentroidTriager, Triager
from policies.decision import Triage
from sandbox.base import Frame

# The category reported when the triager could not classify the task.
UNKNOWN_CATEGORY = "unknown"


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
        try:
            return self.triager.classify(task)
        except PerceptionError:
            return Triage(category=UNKNOWN_CATEGORY, risk="high", confidence=0.0)

    def read(self, frame: Frame) -> list[TextElement]:
        """Every piece of text on ``frame`` with its box (cached by frame hash)."""
        return self.parser.parse(frame)

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None:
        """The centre of ``text`` on ``frame`` (a script's ``click_text`` and
        ``wait_for_text``), read as a person reads it (:mod:`agent.perception.textmatch`)."""
        element = textmatch.find(self.parser.parse(frame), text)
        return None if element is None else element.center

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        try:
            elements = self.parser.parse(frame)
        except PerceptionError as exc:
            return 1.0, f"the screen's text could not be checked for injection: {exc}"
        assessment = self.guard.assess(elements, task)
        return assessment.risk, assessment.reason
