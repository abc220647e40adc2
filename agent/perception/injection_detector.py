"""The learned detector applied to a screen: the riskiest span, with its box.

:class:`LearnedDetector` cuts the OCR'd words into candidate spans
(:mod:`agent.perception.injection_spans`), scores them with the shipped
:class:`~agent.perception.injection_model.InjectionModel` (loaded on first
use, ~0.1 s, ~1 MB), and answers with the most suspicious one.  A span whose
text the task itself contains is not counted: the person asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.perception.injection_model import POLICY_LINE, InjectionModel, normalise
from agent.perception.injection_spans import Span, screen_spans, text_spans
from agent.perception.screen import TextElement


@dataclass(frozen=True, slots=True)
class DetectorOpinion:
    """The detector's risk (0.5 or more: flagged) and the span that earned it."""

    risk: float
    evidence: Span | None

    @property
    def flagged(self) -> bool:
        return self.risk >= POLICY_LINE

    def describe(self) -> str:
        """One line: the risk, the evidence quoted, and where it is."""
        if self.evidence is None:
            return "learned detector: no text to judge"
        quote = " ".join(self.evidence.text.split())
        quote = quote if len(quote) <= 80 else quote[:77] + "..."
        where = "" if self.evidence.box is None else " at ({}, {})-({}, {})".format(
            *self.evidence.box)
        return f"learned detector {self.risk:.2f}: \"{quote}\"{where}"


class LearnedDetector:
    """Scores a screen's text spans for instructions aimed at the agent."""

    def __init__(self, model: InjectionModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> InjectionModel:
        if self._model is None:
            self._model = InjectionModel.load()
        return self._model

    def assess(self, elements: Sequence[TextElement], task: str = "") -> DetectorOpinion:
        """The riskiest span among the OCR'd words."""
        return self.assess_spans(screen_spans(elements), task)

    def assess_text(self, text: str, task: str = "") -> DetectorOpinion:
        """The riskiest span of plain text (one line a phrase)."""
        return self.assess_spans(text_spans(text), task)

    def assess_spans(self, spans: Sequence[Span], task: str = "") -> DetectorOpinion:
        wanted = normalise(task).replace(" ", "")
        judged = [s for s in spans if not (wanted and _squashed(s.text) in wanted)]
        if not judged:
            return DetectorOpinion(0.0, None)
        scores = self.model.score([span.text for span in judged])
        best = max(range(len(judged)), key=scores.__getitem__)
        return DetectorOpinion(round(scores[best], 4), judged[best])


def _squashed(text: str) -> str:
    return normalise(text).replace(" ", "")
