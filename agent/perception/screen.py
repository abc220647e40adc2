"""What a screen parser promises, and how callers search its answer.

A parser turns a :class:`~sandbox.base.Frame` into :class:`TextElement` s —
one per word, with its box in frame pixels.  Grounding (``click_text``),
assertions and the injection guard read those elements through the helpers
here::

    elements = parser.parse(frame)
    save = find_text(elements, "Save as")        # may span two words
    x, y = save.center if save else (None, None)

The default parser is :class:`agent.perception.ocr.OcrScreenParser`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agent.perception.errors import TextNotFound
from sandbox.base import Frame

# Words further apart than this many text heights belong to different
# phrases (another column, another window), so a query never spans them.
_MAX_WORD_GAP_IN_HEIGHTS = 1.6


@dataclass(frozen=True, slots=True)
class TextElement:
    """A piece of text seen on screen; the box is in frame pixels, x1/y1 exclusive."""

    text: str
    x0: int
    y0: int
    x1: int
    y1: int
    confidence: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def center(self) -> tuple[int, int]:
        """Where to click to hit this text."""
        return ((self.x0 + self.x1) // 2, (self.y0 + self.y1) // 2)

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@runtime_checkable
class ScreenParser(Protocol):
    """Turns a frame into the text elements visible on it."""

    def parse(self, frame: Frame) -> list[TextElement]: ...


def group_lines(elements: Sequence[TextElement]) -> list[list[TextElement]]:
    """Group elements into visual lines (top to bottom), each sorted left to right.

    Two elements share a line when their vertical extents overlap by at least
    half the shorter one: baselines of one line of text wobble by a pixel or two.
    """
    lines: list[list[TextElement]] = []
    for element in sorted(elements, key=lambda e: (e.y0 + e.y1, e.x0)):
        line = next((line for line in lines if _same_line(line[-1], element)), None)
        if line is None:
            lines.append([element])
        else:
            line.append(element)
    return [sorted(line, key=lambda e: e.x0) for line in lines]


def _same_line(a: TextElement, b: TextElement) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.5 * min(a.height, b.height)


def phrases(elements: Sequence[TextElement]) -> list[list[TextElement]]:
    """Runs of words that read as one phrase: same line, no wide gap between them."""
    runs: list[list[TextElement]] = []
    for line in group_lines(elements):
        run = [line[0]]
        for word in line[1:]:
            if _adjacent(run[-1], word):
                run.append(word)
            else:
                runs.append(run)
                run = [word]
        runs.append(run)
    return runs


def _adjacent(left: TextElement, right: TextElement) -> bool:
    height = max(left.height, right.height, 1)
    return right.x0 - left.x1 <= _MAX_WORD_GAP_IN_HEIGHTS * height


def read_lines(elements: Sequence[TextElement]) -> list[str]:
    """The screen's text as phrases in reading order, words joined by spaces."""
    return [" ".join(word.text for word in run) for run in phrases(elements)]


def find_text(elements: Sequence[TextElement], query: str, *, exact: bool = False,
              occurrence: int = 1) -> TextElement | None:
    """Find the ``occurrence``-th place (1-based, reading order) where ``query`` is shown.

    By default the match ignores case and whitespace and may start or end
    inside a word ("deskhand" is found in "~/deskhand$"); the returned box then
    covers only the matched characters, estimated from their share of the word.
    With ``exact=True`` the query must equal whole consecutive words
    (whitespace still collapsed).  Multi-word queries may span adjacent words.
    """
    if occurrence < 1:
        raise ValueError(f"occurrence counts from 1, not {occurrence}")
    matcher = _exact_matches if exact else _loose_matches
    for index, match in enumerate(matcher(elements, query), start=1):
        if index == occurrence:
            return match
    return None


def _exact_matches(elements: Sequence[TextElement], query: str) -> Iterator[TextElement]:
    wanted = query.split()
    if not wanted:
        return
    for run in phrases(elements):
        words = [word.text for word in run]
        for start in range(len(run) - len(wanted) + 1):
            if words[start:start + len(wanted)] == wanted:
                yield _merge(run[start:start + len(wanted)])


def _merge(words: Sequence[TextElement]) -> TextElement:
    return TextElement(" ".join(w.text for w in words), min(w.x0 for w in words),
                       min(w.y0 for w in words), max(w.x1 for w in words),
                       max(w.y1 for w in words), min(w.confidence for w in words))


def _loose_matches(elements: Sequence[TextElement], query: str) -> Iterator[TextElement]:
    needle = _squash(query)
    if not needle:
        return
    for run in phrases(elements):
        haystack, origin = _squashed_with_origin(run)
        start = haystack.find(needle)
        while start != -1:
            yield _span(run, origin[start], origin[start + len(needle) - 1])
            start = haystack.find(needle, start + 1)


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()


def _squashed_with_origin(run: Sequence[TextElement]) -> tuple[str, list[tuple[int, int]]]:
    """The run's text without whitespace, casefolded, and where each char came from."""
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    for word_index, word in enumerate(run):
        for char_index, char in enumerate(word.text):
            if char.isspace():
                continue
            folded = char.casefold()
            chars.append(folded)
            origin.extend([(word_index, char_index)] * len(folded))
    return "".join(chars), origin


def _span(run: Sequence[TextElement], first: tuple[int, int],
          last: tuple[int, int]) -> TextElement:
    first_word, last_word = run[first[0]], run[last[0]]
    x0 = _char_edge(first_word, first[1])
    x1 = _char_edge(last_word, last[1] + 1)
    words = run[first[0]:last[0] + 1]
    text = " ".join(w.text for w in words)
    cut = text[first[1]:len(text) - (len(last_word.text) - last[1] - 1)]
    merged = _merge(words)
    return TextElement(cut, x0, merged.y0, max(x1, x0 + 1), merged.y1, merged.confidence)


def _char_edge(word: TextElement, char_index: int) -> int:
    """x of the left edge of ``word.text[char_index]`` (or the right end), by proportion."""
    share = char_index / max(len(word.text), 1)
    return word.x0 + round(share * (word.x1 - word.x0))


def wait_for_text(source: Callable[[], Frame], parser: ScreenParser, query: str, *,
                  timeout_s: float = 10.0, interval_s: float = 0.25, exact: bool = False,
                  occurrence: int = 1,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> TextElement:
    """Take frames from ``source`` until ``query`` is visible; return where it is.

    Raises :class:`TextNotFound` once ``timeout_s`` has passed without a match
    (at least one frame is always read).
    """
    deadline = clock() + timeout_s
    while True:
        found = find_text(parser.parse(source()), query, exact=exact, occurrence=occurrence)
        if found is not None:
            return found
        if clock() >= deadline:
            raise TextNotFound(query, timeout_s)
        sleep(max(0.0, min(interval_s, deadline - clock())))
