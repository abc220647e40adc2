"""Match text on screen as a person reads it, not byte for byte.

The offline OCR confuses glyphs a reader never would: ``KEEP-OK-42`` comes
back as ``KEEP-0K-42``, ``list`` as ``Iist``, ``rn`` as ``m``; it drops
hyphens and mis-spaces words.  Both the query and the recognised text are
folded to one reading before they are compared:

- case and whitespace are ignored;
- hyphens (``-``, ``‐``, ``–``) are ignored;
- ``O``/``0``, ``l``/``1``/``I``/``|`` read the same, and ``rn`` reads as ``m``.

``exact=True`` switches all of that off but whitespace (whole words must equal).
When nothing matches, :func:`explain_miss` says what the screen did show and
the closest candidates, for the failure message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

from agent.perception.screen import TextElement, find_text, phrases

_IGNORED = frozenset(" \t\n\r-‐‑–—")
_SAME_AS = {"0": "o", "1": "l", "i": "l", "|": "l", "!": "l"}
MAX_SHOWN_CHARS = 240
CANDIDATES = 3


def fold(text: str) -> str:
    """``text`` in the one reading the matcher compares (see the module docstring)."""
    return "".join(char for char, _ in _folded_with_origin([text]))


def find(elements: Sequence[TextElement], query: str, *,
         exact: bool = False) -> TextElement | None:
    """Where ``query`` shows on screen (the first place, in reading order), or None."""
    if exact:
        return find_text(elements, query, exact=True)
    return next(_fuzzy_matches(elements, query), None)


def _fuzzy_matches(elements: Sequence[TextElement], query: str) -> Iterator[TextElement]:
    needle = fold(query)
    if not needle:
        return
    for run in phrases(elements):
        folded = _folded_with_origin([word.text for word in run])
        haystack = "".join(char for char, _ in folded)
        start = haystack.find(needle)
        if start != -1:
            first, last = folded[start][1], folded[start + len(needle) - 1][1]
            yield _span(run, first, last)


def _folded_with_origin(words: Sequence[str]) -> list[tuple[str, tuple[int, int]]]:
    """Each folded character with the (word, char) it came from."""
    chars: list[tuple[str, tuple[int, int]]] = []
    for word_index, word in enumerate(words):
        for char_index, char in enumerate(word):
            if char in _IGNORED:
                continue
            for folded in char.casefold():
                chars.append((_SAME_AS.get(folded, folded), (word_index, char_index)))
    return _merge_rn(chars)


def _merge_rn(chars: list[tuple[str, tuple[int, int]]]) -> list[tuple[str, tuple[int, int]]]:
    out: list[tuple[str, tuple[int, int]]] = []
    index = 0
    while index < len(chars):
        char, origin = chars[index]
        if char == "r" and index + 1 < len(chars) and chars[index + 1][0] == "n":
            out.append(("m", origin))
            index += 2
            continue
        out.append((char, origin))
        index += 1
    return out


def _span(run: Sequence[TextElement], first: tuple[int, int],
          last: tuple[int, int]) -> TextElement:
    """The box of the matched characters, estimated from their share of each word."""
    first_word, last_word = run[first[0]], run[last[0]]
    words = run[first[0]:last[0] + 1]
    x0 = _char_edge(first_word, first[1])
    x1 = max(_char_edge(last_word, last[1] + 1), x0 + 1)
    text = " ".join(w.text for w in words)
    return TextElement(text, x0, min(w.y0 for w in words), x1, max(w.y1 for w in words),
                       min(w.confidence for w in words))


def _char_edge(word: TextElement, char_index: int) -> int:
    share = char_index / max(len(word.text), 1)
    return word.x0 + round(share * (word.x1 - word.x0))


def recognised_text(elements: Sequence[TextElement]) -> str:
    """What the OCR read, phrase by phrase, shortened for a message."""
    text = " | ".join(" ".join(w.text for w in run) for run in phrases(elements))
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def closest(elements: Sequence[TextElement], query: str, n: int = CANDIDATES) -> list[str]:
    """The pieces of screen text most like ``query`` (runs of as many words, ±1)."""
    width = max(1, len(query.split()))
    pieces: set[str] = set()
    for run in phrases(elements):
        words = [w.text for w in run]
        for size in {max(1, width - 1), width, width + 1}:
            for start in range(max(1, len(words) - size + 1)):
                pieces.add(" ".join(words[start:start + size]))
    folded = {piece: fold(piece) for piece in pieces}
    target = fold(query)
    ranked = sorted(pieces, key=lambda p: (-_likeness(folded[p], target), p))
    return [p for p in ranked[:n] if _likeness(folded[p], target) > 0.3]


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def explain_miss(elements: Sequence[TextElement], query: str) -> str:
    """Why ``query`` was not found: the closest candidates and what was on screen."""
    near = closest(elements, query)
    shown = recognised_text(elements) or "(no text recognised)"
    nearest = ", ".join(repr(c) for c in near) if near else "none alike"
    return f"closest: {nearest}; screen read: {shown}"
