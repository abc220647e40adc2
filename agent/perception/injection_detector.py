"""The learned detector applied to a screen: the riskiest span, with its box.

:class:`LearnedDetector` cuts the OCR'd words into candidate spans
(:mod:`agent.perception.injection_spans`), scores them with the shipped
:class:`~agent.perception.injection_model.InjectionModel` (loaded on first
use, ~0.1 s, ~1 MB), and takes the most suspicious one as the evidence.  That
span, and the same grown by a line above or below, is then read for its
meaning by a sentence encoder (:mod:`agent.perception.injection_semantic`),
and the two opinions blended give the risk (the riskiest of those
readings).  A span whose text the task itself contains is not counted: the
person asked for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.perception.injection_model import POLICY_LINE, InjectionModel, normalise, sigmoid
from agent.perception.injection_semantic import E5Encoder, SentenceEncoder
from agent.perception.injection_spans import Span, screen_spans, text_spans
from agent.perception.screen import TextElement

# A line that ends a sentence: the next line starts another.
_SENTENCE_END = re.compile(r"[.!?;:。！？；：…]['\"”’»」』)]*\s*$")


@dataclass(frozen=True, slots=True)
class DetectorOpinion:
    """The detector's risk (0.5 or more: flagged) and the span that earned it.

    ``spelling`` and ``meaning`` are the two opinions the risk blends: the
    character n-grams' and the sentence encoder's (None when not consulted).
    """

    risk: float
    evidence: Span | None
    spelling: float | None = None
    meaning: float | None = None

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

    def __init__(self, model: InjectionModel | None = None,
                 encoder: SentenceEncoder | None = None) -> None:
        self._model = model
        self._encoder = encoder

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
        logits = self.model.logits([span.text for span in judged]).tolist()
        best = max(range(len(judged)), key=logits.__getitem__)
        opinions = [self._opinion(judged[i], logits[i])
                    for i in [best, *_one_line_longer(judged, best)]]
        return max(opinions, key=lambda opinion: opinion.risk)

    def _opinion(self, span: Span, ngram_logit: float) -> DetectorOpinion:
        model = self.model
        spelling = sigmoid(ngram_logit - model.threshold_logit)
        if model.semantic is None:
            return DetectorOpinion(round(spelling, 4), span, round(spelling, 4))
        if self._encoder is None:
            self._encoder = E5Encoder()
        semantic_logit = float(model.semantic.logits(self._encoder.embed([span.text]))[0])
        risk = sigmoid(model.semantic.blended(ngram_logit, semantic_logit))
        meaning = sigmoid(semantic_logit)
        return DetectorOpinion(round(risk, 4), span, round(spelling, 4), round(meaning, 4))


def _one_line_longer(spans: Sequence[Span], best: int) -> list[int]:
    """The spans that are ``spans[best]`` with the line above or below it added.

    The n-grams pick the span; a sentence wrapped over two lines often has
    its telling half on one ("AKIA4xYZ into config.py and push to main"), and
    the sentence encoder then judges half an order.  It reads the span grown
    by a line each way too, where the sentence runs on over the break, and
    the riskier reading counts.
    """
    text = spans[best].text
    lines = text.count("\n") + 1
    return [i for i, span in enumerate(spans)
            if i != best and span.text.count("\n") + 1 == lines + 1
            and _runs_on(span.text, text)][:2]


def _runs_on(longer: str, text: str) -> bool:
    """Whether ``longer`` is ``text`` and a line more, joined where a sentence runs on."""
    if longer.startswith(text + "\n"):
        return not _SENTENCE_END.search(text)
    if longer.endswith("\n" + text):
        return not _SENTENCE_END.search(longer[:-len(text) - 1])
    return False


def _squashed(text: str) -> str:
    return normalise(text).replace(" ", "")
