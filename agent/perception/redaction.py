"""Secrets never leave as pixels: black out where a secret shows on a frame.

:class:`FrameRedactor` satisfies ``agent.loop.FrameGuard``.  The loop hands
it every new frame before the frame is stored, shown or given to a planner;
it answers with the frame to use instead (``GuardedFrame``): the regions
where a secret shows blacked out, each marked ``redacted: secret``.

Where a secret shows is found three ways:

* **known values** — placeholder values and text the policy marked secret
  this session, held in this object's memory only — looked for in the OCR's
  words, fuzzily (the OCR's confusions O/0, l/1/I, dropped hyphens; a value
  split over several words, or wrapped onto the next line as pieces);
* **the secret detectors' patterns** (:data:`policies.detectors.DETECTORS`)
  run on each word and phrase the OCR read;
* **the field it was typed into**: the pixels that changed with a step that
  typed a secret.  They stay blacked out in later frames for as long as they
  look the same, whatever the OCR makes of them.

The OCR reads only what changed since the previous frame (the parser is
incremental), so a frame costs little beyond the injection guard's read.

**Fail closed.**  When the frame cannot be read (the OCR failed or passed its
deadline) after a secret was typed this session, nothing can say where the
secret is not.  The frame is then *withheld*: the loop stores it with the
typed field and everything that changed since the previous frame blacked
out, and gives the planner no image for it (a text note instead).  Asking a
human was the other choice; it was not taken because the human sees the same
unreadable frame, cannot judge better than the redactor whether a secret is
on it, and an unattended run would stop at every OCR hiccup.  The planner can
take another screenshot and get a readable frame.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz import fuzz

from agent.frame_guard import GuardedFrame
from agent.perception import textmatch
from agent.perception.errors import PerceptionError
from agent.perception.ocr import decode_frame
from agent.perception.regions import Box, changed_regions, merge_overlapping
from agent.perception.screen import ScreenParser, TextElement, phrases
from policies.detectors import DETECTORS, Detector, secret_parts
from sandbox.base import Frame

MARK = "redacted: secret"
# Known values shorter than this are too likely to match innocent text.
MIN_SECRET_CHARS = 4
# Below this many characters a value must be read exactly (no fuzzy match).
MIN_FUZZY_CHARS = 8
# A fuzzy match must be at least this good (rapidfuzz's 0..100 scale).
MATCH_SCORE = 84.0
# A word this long that is nearly a piece of a known value is part of it
# (a value wrapped onto the next line shows as pieces).
MIN_PIECE_CHARS = 6
PIECE_SCORE = 90.0
PAD = 3
DEFAULT_OCR_TIMEOUT_S = 10.0


@dataclass(slots=True)
class _Field:
    """Where a secret was typed: a box and how its pixels looked then."""

    box: Box
    pixels: bytes


class FrameRedactor:
    """Blacks out secrets on frames (see the module docstring)."""

    def __init__(self, parser: ScreenParser | Callable[[], ScreenParser], *,
                 secrets: Iterable[str] = (),
                 detectors: Sequence[Detector] = tuple(DETECTORS.values()),
                 ocr_timeout_s: float = DEFAULT_OCR_TIMEOUT_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._parser_source = parser
        self._parser: ScreenParser | None = None
        self._detectors = tuple(detectors)
        self._timeout_s = ocr_timeout_s
        self._clock = clock
        self._folded: list[str] = []
        self._pieces_of: list[str] = []
        self._fields: list[_Field] = []
        self._previous: np.ndarray | None = None
        self._secret_typed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redaction-ocr")
        self._lock = threading.Lock()
        for value in secrets:
            self._add_value(value)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- what the loop tells it ----------------------------------------------

    def remember_secret(self, text: str) -> None:
        """``text`` was typed as a secret: hunt for it on every frame from now on.

        What is hunted for is :func:`policies.detectors.secret_parts`: the
        text, and its secret-looking words and their values.
        """
        self._secret_typed = True
        for part in secret_parts(text):
            # A line of several words is not hunted for by its pieces: its
            # innocent words (``export``) are pieces of it.
            self._add_value(part, pieces=len(part.split()) == 1)

    def guard(self, frame: Frame, *, typed_secret: bool = False) -> GuardedFrame:
        """``frame`` with its secrets blacked out; ``typed_secret``: its step typed one."""
        started = self._clock()
        with self._lock:
            boxes, withheld = self._find(frame, typed_secret)
        redacted = redact(frame, boxes) if boxes else frame
        return GuardedFrame(frame=redacted, boxes=tuple(boxes), withheld=withheld,
                            redact_ms=(self._clock() - started) * 1000)

    # -- finding ---------------------------------------------------------------

    def _find(self, frame: Frame, typed_secret: bool) -> tuple[list[Box], str]:
        try:
            image = decode_frame(frame)
        except PerceptionError as exc:
            return self._unreadable(frame, None, str(exc))
        previous, self._previous = self._previous, image
        changed = _changes(previous, image)
        if typed_secret:
            self._secret_typed = True
            self._fields += [_Field(box, _pixels(image, box)) for box in changed]
        try:
            elements = self._read(frame)
        except (PerceptionError, FutureTimeout, OSError) as exc:
            reason = str(exc) or "the OCR passed its deadline"
            return self._unreadable(frame, image, reason, changed)
        boxes = [f.box for f in self._fields if _pixels(image, f.box) == f.pixels]
        boxes += [e.box for e in self.secret_words(elements)]
        return _clean(boxes, frame), ""

    def _unreadable(self, frame: Frame, image: np.ndarray | None, why: str,
                    changed: Sequence[Box] = ()) -> tuple[list[Box], str]:
        if not self._secret_typed:
            return [], ""
        whole: Box = (0, 0, frame.width, frame.height)
        boxes = [f.box for f in self._fields] + list(changed) if image is not None else [whole]
        reason = (f"the screen could not be checked for secrets ({why}); "
                  "its image is withheld")
        return _clean(boxes or [whole], frame), reason

    def _read(self, frame: Frame) -> list[TextElement]:
        parser = self._get_parser()
        return self._pool.submit(parser.parse, frame).result(timeout=self._timeout_s)

    def _get_parser(self) -> ScreenParser:
        if self._parser is None:
            source = self._parser_source
            self._parser = source if isinstance(source, ScreenParser) else source()
        return self._parser

    def secret_words(self, elements: Sequence[TextElement]) -> list[TextElement]:
        """The words (or runs of words) on screen that are, or hold, a secret."""
        found: list[TextElement] = []
        for run in phrases(elements):
            found += self._known_values_in(run)
            found += _detected_in(run, self._detectors)
        return _outermost(found)

    def _known_values_in(self, run: list[TextElement]) -> list[TextElement]:
        if not self._folded:
            return []
        folded_words = [textmatch.fold(word.text) for word in run]
        found = [_union(run[first:last]) for value in self._folded
                 for first, last in _value_spans(value, folded_words)]
        found += [word for word, folded in zip(run, folded_words, strict=True)
                  if self._is_piece(folded)]
        return found

    def _is_piece(self, folded: str) -> bool:
        if len(folded) < MIN_PIECE_CHARS:
            return False
        return any(fuzz.partial_ratio(folded, value) >= PIECE_SCORE
                   for value in self._pieces_of)

    def _add_value(self, value: str, *, pieces: bool = True) -> None:
        """Hunt for ``value``; with ``pieces``, for words that are pieces of it too.

        A line of several words is not hunted for by pieces: its innocent
        words (``export``) are pieces of it.
        """
        folded = textmatch.fold(value.strip())
        if len(folded) < MIN_SECRET_CHARS:
            return
        if folded not in self._folded:
            self._folded.append(folded)
        if pieces and len(folded) >= MIN_FUZZY_CHARS and folded not in self._pieces_of:
            self._pieces_of.append(folded)


# -- matching ----------------------------------------------------------------


def _value_spans(value: str, folded_words: Sequence[str]) -> list[tuple[int, int]]:
    """Word ranges ``[first, last)`` of a phrase that read as ``value``."""
    haystack, owner = "", []
    for index, word in enumerate(folded_words):
        haystack += word
        owner += [index] * len(word)
    if not haystack:
        return []
    if len(value) < MIN_FUZZY_CHARS:
        return _exact_spans(value, haystack, owner)
    if len(haystack) < len(value) * 0.6:
        return []  # too short to be the value; pieces are checked word by word
    match = fuzz.partial_ratio_alignment(value, haystack, score_cutoff=MATCH_SCORE)
    if match is None or match.dest_end <= match.dest_start:
        return []
    return [(owner[match.dest_start], owner[match.dest_end - 1] + 1)]


def _exact_spans(value: str, haystack: str, owner: list[int]) -> list[tuple[int, int]]:
    spans = []
    start = haystack.find(value)
    while start != -1:
        spans.append((owner[start], owner[start + len(value) - 1] + 1))
        start = haystack.find(value, start + 1)
    return spans


def _detected_in(run: list[TextElement], detectors: Sequence[Detector]) -> list[TextElement]:
    """Words a detector recognises; the whole phrase when only the phrase is recognised."""
    words = [word for word in run if any(d.found_in(word.text) for d in detectors)]
    if words:
        return words
    text = " ".join(word.text for word in run)
    return [_union(run)] if any(d.found_in(text) for d in detectors) else []


def _outermost(found: Sequence[TextElement]) -> list[TextElement]:
    """Each found box once, boxes inside another found box dropped."""
    def inside(a: TextElement, b: TextElement) -> bool:
        return b.x0 <= a.x0 and b.y0 <= a.y0 and a.x1 <= b.x1 and a.y1 <= b.y1

    unique = list(dict.fromkeys(found))
    return [a for a in unique if not any(a is not b and inside(a, b) and a.box != b.box
                                         for b in unique)]


def _union(words: Sequence[TextElement]) -> TextElement:
    return TextElement(" ".join(w.text for w in words), min(w.x0 for w in words),
                       min(w.y0 for w in words), max(w.x1 for w in words),
                       max(w.y1 for w in words), min(w.confidence for w in words))


def _changes(previous: np.ndarray | None, image: np.ndarray) -> list[Box]:
    if previous is None or previous.shape != image.shape:
        height, width = image.shape[:2]
        return [(0, 0, width, height)]
    return changed_regions(previous, image)


def _pixels(image: np.ndarray, box: Box) -> bytes:
    x0, y0, x1, y1 = box
    return bytes(image[y0:y1, x0:x1].tobytes())


def _clean(boxes: Iterable[Box], frame: Frame) -> list[Box]:
    """Boxes padded a little, kept on the frame, overlapping ones merged."""
    padded = [(max(0, x0 - PAD), max(0, y0 - PAD), min(frame.width, x1 + PAD),
               min(frame.height, y1 + PAD)) for x0, y0, x1, y1 in boxes]
    return sorted(merge_overlapping(b for b in padded if b[2] > b[0] and b[3] > b[1]))


# -- drawing -----------------------------------------------------------------


def redact(frame: Frame, boxes: Sequence[Box]) -> Frame:
    """A copy of ``frame`` with ``boxes`` filled black, each marked ``redacted: secret``."""
    try:
        with Image.open(io.BytesIO(frame.png)) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError):  # undecodable: nothing of it may be kept
        image = Image.new("RGB", (frame.width, frame.height))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for box in boxes:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(0, 0, 0),
                       outline=(220, 40, 40))
        _label(draw, font, box)
    _banner(draw, font, image.size)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return Frame.from_png(out.getvalue(), frame.width, frame.height,
                          window_title=frame.window_title, cursor=frame.cursor,
                          captured_at=frame.captured_at)


def _label(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
           box: Box) -> None:
    x0, y0, x1, y1 = box
    left, top, right, bottom = draw.textbbox((0, 0), MARK, font=font)
    width, height = right - left, bottom - top
    if x1 - x0 >= width + 4 and y1 - y0 >= height + 2:
        draw.text((x0 + 2, y0 + (y1 - y0 - height) // 2 - top), MARK, fill=(255, 90, 90),
                  font=font)
        return
    # Too small for the words: a red bar along the top says the same at a glance.
    draw.rectangle((x0, y0, x1 - 1, min(y1 - 1, y0 + 1)), fill=(220, 40, 40))


def _banner(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
            size: tuple[int, int]) -> None:
    """The mark in the bottom-right corner, so a frame shows it was redacted at any scale."""
    left, top, right, bottom = draw.textbbox((0, 0), MARK, font=font)
    width, height = right - left + 8, bottom - top + 6
    x0, y0 = size[0] - width, size[1] - height
    draw.rectangle((x0, y0, size[0] - 1, size[1] - 1), fill=(200, 30, 30))
    draw.text((x0 + 4, y0 + 3 - top), MARK, fill=(255, 255, 255), font=font)
