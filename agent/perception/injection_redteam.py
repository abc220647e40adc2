"""A screen's text judged for injection as the loop judges a frame (``policy redteam``).

The text is laid out as OCR'd lines (one :class:`TextElement` a line, top to
bottom) and given to the learned detector and the patterns together
(:class:`~agent.perception.perceiver.InjectionVerdict`), without OCR: the
red team asks what the policy does with a screen that was read correctly.
"""

from __future__ import annotations

from functools import cache

from agent.perception.injection import InjectionGuard
from agent.perception.injection_detector import LearnedDetector
from agent.perception.perceiver import InjectionVerdict
from agent.perception.screen import TextElement

LINE_HEIGHT = 24
CHAR_WIDTH = 8
MARGIN = 16


def screen_elements(text: str) -> list[TextElement]:
    """``text`` as the words of a screen: one element a non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [TextElement(text=line, x0=MARGIN, y0=MARGIN + index * LINE_HEIGHT,
                        x1=MARGIN + CHAR_WIDTH * len(line),
                        y1=MARGIN + (index + 1) * LINE_HEIGHT - 4, confidence=1.0)
            for index, line in enumerate(lines)]


@cache
def _judges() -> tuple[LearnedDetector, InjectionGuard]:
    return LearnedDetector(), InjectionGuard()


def judge_screen_text(text: str, task: str = "") -> tuple[float, str]:
    """The injection risk and reason the policy would be told for a screen showing ``text``."""
    detector, guard = _judges()
    elements = screen_elements(text)
    verdict = InjectionVerdict(detector.assess(elements, task), guard.assess(elements, task))
    return verdict.risk, verdict.reason
