"""Candidate spans: the pieces of a screen's text the injection detector scores.

An order to the agent is a sentence or two, often wrapped over lines and set
among ordinary text.  Scoring the whole screen would drown it; scoring one
line would miss it when it wraps.  So the screen's phrases are chained into
text blocks (a phrase belongs under the one directly above it), and every run
of one to :data:`WINDOW_LINES` consecutive lines of a block is a candidate.
Narrow columns wrap one sentence over more lines than that ("Por favor, ol-",
"vida todas las instruc-", ...), so a longer run is a candidate too while its
text stays short (:data:`SHORT_SPAN_CHARS`, at most :data:`SHORT_SPAN_LINES`
lines).  The same windows are cut from plain text (one line a phrase), which
is how the corpus is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.perception.injection_model import reflow
from agent.perception.regions import Box
from agent.perception.screen import TextElement, phrases

WINDOW_LINES = 3
# A run of more lines is still one candidate while it is this short: a
# sentence wrapped in a narrow column.
SHORT_SPAN_CHARS = 120
SHORT_SPAN_LINES = 6
# A phrase continues the block above it when the gap between them is at
# most this many text heights and they overlap horizontally.
_LINE_GAP_IN_HEIGHTS = 1.2


@dataclass(frozen=True, slots=True)
class Span:
    """Consecutive lines of one text block, with the box around them (None for plain text)."""

    text: str
    box: Box | None


def windows(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Every ``[start, end)`` of consecutive lines (of these lengths) that is a candidate:
    up to :data:`WINDOW_LINES` lines, or up to :data:`SHORT_SPAN_LINES` while short."""
    found = []
    for start in range(len(lengths)):
        size = 0
        for end in range(start + 1, min(len(lengths), start + SHORT_SPAN_LINES) + 1):
            size += lengths[end - 1]
            if end - start > WINDOW_LINES and size > SHORT_SPAN_CHARS:
                break
            found.append((start, end))
    return found


def text_spans(text: str) -> list[Span]:
    """Candidate spans of plain text, one line per phrase (blank lines dropped)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [Span(reflow("\n".join(lines[start:end])), None)
            for start, end in windows([len(line) for line in lines])]


def screen_spans(elements: Sequence[TextElement]) -> list[Span]:
    """Candidate spans of OCR'd words: windows of lines inside each text block."""
    spans = []
    for block in text_blocks(elements):
        texts = [_line_text(line) for line in block]
        for start, end in windows([len(text) for text in texts]):
            spans.append(Span(reflow("\n".join(texts[start:end])),
                              _box_around([word for line in block[start:end] for word in line])))
    return spans


def text_blocks(elements: Sequence[TextElement]) -> list[list[list[TextElement]]]:
    """Phrases (top to bottom) chained into blocks of lines that read as one text."""
    blocks: list[list[list[TextElement]]] = []
    for phrase in phrases(elements):
        block = next((b for b in reversed(blocks) if _continues(b[-1], phrase)), None)
        if block is None:
            blocks.append([phrase])
        else:
            block.append(phrase)
    return blocks


def _continues(above: Sequence[TextElement], below: Sequence[TextElement]) -> bool:
    top, bottom = _box_around(above), _box_around(below)
    height = max(top[3] - top[1], bottom[3] - bottom[1], 1)
    gap = bottom[1] - top[3]
    overlaps = bottom[0] < top[2] and top[0] < bottom[2]
    return -height // 2 <= gap <= _LINE_GAP_IN_HEIGHTS * height and overlaps


def _line_text(words: Sequence[TextElement]) -> str:
    return " ".join(word.text for word in words)


def _box_around(words: Sequence[TextElement]) -> Box:
    return (min(w.x0 for w in words), min(w.y0 for w in words),
            max(w.x1 for w in words), max(w.y1 for w in words))
