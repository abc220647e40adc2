"""From a recognised line image to words with tight boxes.

The recogniser reads one line image and reports, for each character, the
output column where it fired (CTC decoding, one column per 8 pixels of the
line scaled to 48 pixels high).  This module turns that into words:

* character centres from the columns, and the line's character pitch;
* word breaks at decoded spaces, and at blank stripes of a space's width
  where the recogniser dropped the space (on a line set in a monospace
  font, an empty cell's width);
* each word's box shrunk to the glyphs' ink, vertically to the line's own
  text (the detector's padded box may catch neighbouring lines).

Boxes are relative to the line image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.perception.regions import Box, Image
from agent.perception.screen import TextElement

InkMask = npt.NDArray[np.bool_]

# A jump of more than this many character pitches between two characters
# with no space decoded between them is a gap between words: menu labels
# are spaced wider than a space, and the recogniser often drops it.
_WORD_GAP_PITCHES = 2.4
# Otherwise a blank stripe between two characters is a (dropped) space when
# it is at least this wide in character pitches, in text heights and in the
# line's median glyph gap.  Measured on ~9,900 character pairs of drawn
# DejaVu Sans/Mono/Serif text, 12-18 px: 0.1 % of pairs split wrongly.
_SPACE_PITCHES = 0.4
_SPACE_HEIGHTS = 0.25
_SPACE_USUAL_GAPS = 2.5
# A line set in a monospace font (a terminal, an editor) has its characters
# on a grid of equal cells, and narrow ones (i, l, r, t, j, punctuation)
# stand in the middle of theirs with wide blank sides, which the rule above
# takes for spaces ("inst ru-", "config . j s").  On such a line a dropped
# space is an empty cell.  Measured on ~39,000 character pairs of drawn text
# (DejaVu Sans Mono, its bold, Nimbus Mono; 11-20 px): the blank where a
# space was dropped is at least 1.05 cells wide (1st percentile), between
# letters at most 0.57 (99th); the rule above split 3 % of those pairs.
_EMPTY_CELL = 0.8
# A line is on a grid when this share of its characters (at least
# ``_GRID_MIN_CHARS``) lie within a quarter cell of a straight grid.  Lines
# in those monospace fonts: 81-97 % are; in six proportional ones: 0.3-3 %.
_ON_GRID_SHARE = 0.9
_GRID_MIN_CHARS = 8
_NEAR_CELL = 0.25
# Grey-level distance from the background that counts as ink.
_INK_CONTRAST = 48

# How far ascenders/descenders may reach beyond a line's body, in body heights.
_REACH = 0.45


@dataclass(frozen=True, slots=True)
class RecognisedLine:
    """One recognised line image: its text, per-character columns and confidences.

    ``column_count`` is how many recogniser columns span the image's width.
    """

    width: int
    height: int
    text: str
    columns: list[int]
    confidences: list[float]
    column_count: float

    @property
    def confidence(self) -> float:
        return _mean(self.confidences)


def recognised_line(piece: Image, result: Any) -> RecognisedLine:
    """Read RapidOCR's word-box result ``(text, score, [columns, ...])`` for one line image."""
    text, _score, (column_count, _words, word_columns, _states, confidences) = result
    columns = [column for group in word_columns for column in group]
    if len(columns) != len(text) or len(confidences) != len(text):
        # The decoder groups characters itself; if it ever disagrees with
        # the text, fall back to an even spread rather than misplacing boxes.
        columns = [round((i + 0.5) * column_count / max(len(text), 1)) for i in range(len(text))]
        confidences = [float(_score)] * len(text)
    height, width = piece.shape[:2]
    return RecognisedLine(width, height, text, columns, [float(c) for c in confidences],
                 float(column_count))


def split_words(line: RecognisedLine, ink: InkMask) -> list[TextElement]:
    """Split a line into words, boxes relative to the line image, shrunk to ink."""
    pixels_per_column = line.width / max(line.column_count, 1.0)
    centers = [(column + 0.5) * pixels_per_column for column in line.columns]
    pitch = _pitch(centers, line.text, line.height)
    top, bottom = text_rows(ink)
    blank: InkMask = np.logical_not(ink[top:bottom].any(axis=0))
    gaps = _WordGaps(line.text, centers, pitch, blank, bottom - top)
    words = []
    for start, end in _word_spans(line.text, gaps):
        # Generous bounds from the character positions, then shrink to ink.
        left = max(0, int(centers[start] - 0.75 * pitch))
        right = min(line.width, int(np.ceil(centers[end - 1] + 0.75 * pitch)))
        left, right = _ink_columns(ink[top:bottom], left, max(right, left + 1))
        words.append(TextElement(line.text[start:end], left, top, right, bottom,
                                 round(_mean(line.confidences[start:end]), 4)))
    return words


def unread_ink_share(line: RecognisedLine, ink: InkMask) -> float:
    """The share of the line's inked columns farther than a character pitch
    from every character the recogniser read: ink it named nothing for.  A
    Hindi word amid a path and an address comes back as nothing at all, with
    the Latin words around it read surely."""
    top, bottom = text_rows(ink)
    inked = ink[top:bottom].any(axis=0)
    if not inked.any():
        return 0.0
    pixels_per_column = line.width / max(line.column_count, 1.0)
    centers = [(column + 0.5) * pixels_per_column for column in line.columns]
    reach = _pitch(centers, line.text, line.height)
    read = np.zeros_like(inked)
    for center in (c for c, character in zip(centers, line.text, strict=True)
                   if not character.isspace()):
        read[max(0, int(center - reach)):int(np.ceil(center + reach))] = True
    return float((inked & ~read).sum() / inked.sum())


def ink_mask(crop: Image) -> InkMask:
    """Pixels that stand out from the crop's background (text of either polarity)."""
    gray = crop.mean(axis=2)
    mask: InkMask = np.abs(gray - np.median(gray)) > _INK_CONTRAST
    return mask


def text_rows(ink: InkMask) -> tuple[int, int]:
    """[top, bottom) of the line's glyphs.

    The detector's box is padded and may catch the descenders of the line
    above or the ascenders of the line below.  The line's own body (x-height)
    is the run of densely inked rows around the inkiest row; ascenders and
    descenders extend it by at most ``_REACH`` of its height.
    """
    per_row = ink.sum(axis=1)
    # A row inked nearly edge to edge is a border or a bar's edge, not text.
    per_row[per_row > 0.85 * ink.shape[1]] = 0
    if not per_row.any():
        return 0, ink.shape[0]
    dense = per_row >= 0.25 * per_row.max()
    top = bottom = int(np.argmax(per_row))
    while top > 0 and dense[top - 1]:
        top -= 1
    while bottom + 1 < len(dense) and dense[bottom + 1]:
        bottom += 1
    reach = max(1, round(_REACH * (bottom + 1 - top)))
    top = _extend(per_row, top, -1, reach)
    bottom = _extend(per_row, bottom, 1, reach)
    return top, bottom + 1


def _extend(per_row: npt.NDArray[np.intp], row: int, step: int, reach: int) -> int:
    """Move from ``row`` by ``step`` while the next row has ink, at most ``reach`` rows."""
    for _ in range(reach):
        following = row + step
        if not 0 <= following < len(per_row) or per_row[following] == 0:
            break
        row = following
    return row


def ink_bounds(ink: InkMask) -> Box:
    """The smallest box around the ink (the whole image if there is none)."""
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return (0, 0, ink.shape[1], ink.shape[0])
    return (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)


def _ink_columns(ink: InkMask, left: int, right: int) -> tuple[int, int]:
    """Shrink [left, right) to the columns with ink (unchanged if there is none)."""
    columns = np.flatnonzero(ink[:, left:right].any(axis=0))
    if columns.size == 0:
        return left, right
    return left + int(columns[0]), left + int(columns[-1]) + 1


def _pitch(centers: list[float], text: str, height: int) -> float:
    """Typical distance between neighbouring characters of one word, in pixels."""
    steps = [centers[i + 1] - centers[i] for i in range(len(text) - 1)
             if not text[i].isspace() and not text[i + 1].isspace()]
    return float(np.median(steps)) if steps else 0.6 * height


class _WordGaps:
    """Tells whether a word break lies between two neighbouring characters.

    The recogniser often drops the space between words.  A break is there if
    the characters' centres are far apart (menu labels), or if the blank
    stripe between their ink is as wide as a space: wide against the
    character pitch, the text height and the line's usual gap between glyphs;
    on a monospace line, as wide as an empty cell.
    """

    def __init__(self, text: str, centers: list[float], pitch: float, blank: InkMask,
                 text_height: int) -> None:
        self._centers = centers
        self._pitch = pitch
        self._height = text_height
        self._blank = [0] + [_longest_run(blank[int(centers[i - 1]):int(centers[i])])
                             for i in range(1, len(text))]
        inner = [self._blank[i] for i in range(1, len(text))
                 if not text[i].isspace() and not text[i - 1].isspace()]
        self._usual = max(float(np.median(inner)), 1.0) if inner else 1.0
        self._cell = _grid_cell(text, centers, self._blank, pitch)

    def before(self, index: int) -> bool:
        if self._centers[index] - self._centers[index - 1] > _WORD_GAP_PITCHES * self._pitch:
            return True
        blank = self._blank[index]
        if self._cell is not None:
            return blank >= _EMPTY_CELL * self._cell
        return (blank >= _SPACE_PITCHES * self._pitch and blank >= _SPACE_HEIGHTS * self._height
                and blank >= _SPACE_USUAL_GAPS * self._usual)


def _grid_cell(text: str, centers: list[float], blanks: list[int],
               pitch: float) -> float | None:
    """The cell width when the line's characters sit on a monospace grid, else None.

    Each character after the first is a cell on, one more per space decoded
    before it; where none was decoded but the blank stripe is an empty cell's
    width, as many cells as the centres are apart.  A straight line fitted
    through cell numbers and centres is the grid, its slope the cell width.
    """
    chars = [i for i, char in enumerate(text) if not char.isspace()]
    if len(chars) < _GRID_MIN_CHARS or pitch <= 0:
        return None
    centres = np.array([centers[i] for i in chars])
    cell = pitch
    for _ in range(2):  # once from the pitch, once from the first fit
        numbers = np.cumsum([0] + [_cells_on(centers, blanks, cell, a, b)
                                   for a, b in pairwise(chars)])
        cell, offset = np.polyfit(numbers, centres, 1)
        if cell <= 0:
            return None
    off_grid = np.abs(centres - (cell * numbers + offset)) / cell
    return float(cell) if np.mean(off_grid < _NEAR_CELL) >= _ON_GRID_SHARE else None


def _cells_on(centers: list[float], blanks: list[int], cell: float, a: int, b: int) -> int:
    """How many cells character ``b`` lies after character ``a`` (spaces between them)."""
    if b - a > 1:
        return b - a
    if blanks[b] >= _EMPTY_CELL * cell:
        return max(1, round((centers[b] - centers[a]) / cell))
    return 1


def _longest_run(flags: InkMask) -> int:
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def _word_spans(text: str, gaps: _WordGaps) -> list[tuple[int, int]]:
    """[start, end) character ranges of the words: split at spaces and gaps."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for index, char in enumerate(text):
        if start is not None and (char.isspace() or gaps.before(index)):
            spans.append((start, index))
            start = None
        if start is None and not char.isspace():
            start = index
    if start is not None:
        spans.append((start, len(text)))
    return spans


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
