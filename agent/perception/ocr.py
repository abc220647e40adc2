"""The default screen parser: RapidOCR's ONNX models, offline, on the CPU.

The models (PP-OCRv4 detection and recognition) ship inside the
``rapidocr-onnxruntime`` wheel; nothing is downloaded at run time.

:class:`RapidOcrReader` reads words from one rectangle of an image, and
remembers the words of line images it has recognised (keyed by their ink),
so a line that moved or is detected again costs no recognition.
:class:`OcrScreenParser` wraps any such reader with two more savings:

* an LRU cache keyed by the frame's sha256, and
* incremental parsing: a frame is compared with the one parsed before it, and
  only the rectangles that changed are read again; words outside them are
  kept.  When most of the screen changed, the whole frame is read.

Build it once at the edge and pass it down::

    parser = OcrScreenParser(RapidOcrReader.load(threads=2))
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from agent.perception.errors import FrameDecodeError, ModelUnavailable, OcrFailed
from agent.perception.ocr_scripts import ScriptReader, looks_misread
from agent.perception.regions import (
    Box,
    Image,
    align_to_grid,
    area_fraction,
    changed_regions,
    grow_to_cover,
    intersects,
    merge_overlapping,
)
from agent.perception.screen import TextElement, group_lines
from agent.perception.words import (
    ink_bounds,
    ink_mask,
    recognised_line,
    split_words,
    text_rows,
    unread_ink_share,
)
from sandbox.base import Frame

_DETECTION_MODEL = "ch_PP-OCRv4_det_infer.onnx"
_RECOGNITION_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
# The detector's total stride: its input sides must be multiples of it.
DETECTOR_GRID = 32
# Aligning and growing regions alternate until both hold; a few rounds do.
_ALIGN_ATTEMPTS = 4
# Margin added left and right of a detected line, in line heights (at most
# so many pixels).
_LINE_MARGIN = 0.15
_LINE_MARGIN_MAX = 4
# Line images whose words are remembered (a few screens' worth).
_SEEN_LINES = 512


class TextReader(Protocol):
    """Reads the words inside some rectangles of a BGR image."""

    def read(self, image: Image, regions: Sequence[Box]) -> list[TextElement]: ...


class RapidOcrReader:
    """Text detection + recognition with RapidOCR's shipped ONNX models.

    ``det_scale`` below 1 shrinks the image before detection: detection cost
    grows with pixels, but at 0.75 small print (11-12 px text) is partly
    missed, so the default reads at full resolution.  Recognition always
    reads the full-resolution crop.
    """

    def __init__(self, detector: Any, recognizer: Any, *, det_scale: float = 1.0,
                 min_confidence: float = 0.5, other_scripts: ScriptReader | None = None) -> None:
        self._detector = detector
        self._recognizer = recognizer
        self._other_scripts = other_scripts
        self._det_scale = det_scale
        self._min_confidence = min_confidence
        # Words of recently read line images, keyed by the pixels of their
        # ink (so a box a pixel wider does not matter), placed relative to
        # that ink: a line that moved or was detected again is not re-read.
        self._seen: OrderedDict[bytes, tuple[TextElement, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.recognised_lines = 0

    @classmethod
    def load(cls, *, threads: int = 2, det_scale: float = 1.0, min_confidence: float = 0.5,
             other_scripts: bool = True) -> RapidOcrReader:
        """Load the models from the installed wheel (no network), run lean
        (:mod:`agent.perception.ocr_models`).  With ``other_scripts``, lines
        the recogniser misreads as another script are read again by
        Tesseract's script models where they are installed
        (:mod:`agent.perception.ocr_scripts`)."""
        from agent.perception.ocr_models import LineDetector, LineRecognizer, OnnxModel

        models = _models_folder()
        detector = LineDetector(OnnxModel(models / _DETECTION_MODEL, threads))
        recognizer = LineRecognizer(OnnxModel(models / _RECOGNITION_MODEL, threads))
        scripts = ScriptReader.installed() if other_scripts else None
        return cls(detector, recognizer, det_scale=det_scale, min_confidence=min_confidence,
                   other_scripts=scripts)

    def with_scripts(self, other_scripts: ScriptReader | None) -> RapidOcrReader:
        """A reader on the same loaded models whose lines in other scripts are
        read by ``other_scripts`` (None: never read again)."""
        return RapidOcrReader(self._detector, self._recognizer, det_scale=self._det_scale,
                              min_confidence=self._min_confidence, other_scripts=other_scripts)

    def read(self, image: Image, regions: Sequence[Box]) -> list[TextElement]:
        """Words inside ``regions`` of ``image`` (BGR), boxes in image pixels.

        Text is detected region by region; the lines found are recognised
        in one batch.
        """
        try:
            with self._lock:
                return self._recognize(image, [line for region in regions
                                               for line in self._detect(image, region)])
        except cv2.error as exc:
            raise OcrFailed(f"the OCR model failed: {exc}") from exc

    def forget(self) -> None:
        """Drop the remembered lines, so the next read recognises everything afresh."""
        with self._lock:
            self._seen.clear()

    def _detect(self, image: Image, region: Box) -> list[Box]:
        """Boxes of text lines inside ``region``, in image pixels."""
        x0, y0, x1, y1 = region
        crop = image[y0:y1, x0:x1]
        height, width = crop.shape[:2]
        if height < 8 or width < 8:
            return []
        scaled: Any = _pad_to_grid(crop)
        if self._det_scale != 1.0:
            scaled = cv2.resize(crop, None, fx=self._det_scale, fy=self._det_scale,
                                interpolation=cv2.INTER_AREA)
        quads = self._detector(scaled)
        return [_shift_box(_widen(_quad_to_box(quad / self._det_scale, width, height), width),
                           x0, y0)
                for quad in quads]

    def _recognize(self, image: Image, boxes: list[Box]) -> list[TextElement]:
        boxes = [b for b in boxes if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        pieces = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
        inked = [ink_bounds(ink_mask(piece)) for piece in pieces]
        keys = [_piece_key(piece[y0:y1, x0:x1]) for piece, (x0, y0, x1, y1)
                in zip(pieces, inked, strict=True)]
        known = {key: self._recall(key) for key in keys if key in self._seen}
        unseen = [i for i, key in enumerate(keys) if key not in known]
        if unseen:
            self.recognised_lines += len(unseen)
            results = self._recognizer([pieces[i] for i in unseen])
            lines = {i: self._read_line(pieces[i], result)
                     for i, result in zip(unseen, results, strict=True)}
            self._read_near_other_scripts(lines, pieces, boxes)
            for i, line in lines.items():
                known[keys[i]] = tuple(_shift(w, -inked[i][0], -inked[i][1]) for w in line.words)
                self._remember(keys[i], known[keys[i]])
        # Words are remembered relative to their ink; put them back in place.
        return [_shift(word, box[0] + ink[0], box[1] + ink[1])
                for box, ink, key in zip(boxes, inked, keys, strict=True)
                for word in known[key]]

    def _read_line(self, piece: Image, result: Any) -> _Line:
        line = recognised_line(piece, result)
        ink = ink_mask(piece)
        first = tuple(split_words(line, ink)) if line.text.strip() else ()
        if self._other_scripts is not None and looks_misread(
                line.text, line.confidence, line.width, line.height,
                unread_ink=unread_ink_share(line, ink), words=first):
            other = self._other_scripts.read(piece, first)
            if other is not None:
                return _Line(_in_own_rows(other.words, piece), first, other.script)
        if not first or line.confidence < self._min_confidence:
            return _Line((), first)
        return _Line(first, first)

    def _read_near_other_scripts(self, lines: dict[int, _Line], pieces: Sequence[Image],
                                 boxes: Sequence[Box]) -> None:
        """Lines beside a line read in another script, read in that script too.

        Lowercase Cyrillic in a plain font reads as plausible Latin
        ("oxanyicta" for "пожалуйста") and nothing about it looks wrong; a
        paragraph seldom goes a line without a capital or a letter that gives
        it away, and its neighbours follow that line's script.
        """
        if self._other_scripts is None:
            return
        pending = [i for i, line in lines.items() if line.script is None and line.first]
        changed = True
        while changed and pending:
            changed = False
            for i in list(pending):
                script = next((line.script for j, line in lines.items()
                               if line.script is not None and _neighbours(boxes[i], boxes[j])),
                              None)
                if script is None:
                    continue
                pending.remove(i)
                other = self._other_scripts.read(pieces[i], lines[i].first, beside=script)
                if other is not None:
                    lines[i] = _Line(_in_own_rows(other.words, pieces[i]), lines[i].first,
                                     other.script)
                    changed = True

    def _recall(self, key: bytes) -> tuple[TextElement, ...]:
        self._seen.move_to_end(key)
        return self._seen[key]

    def _remember(self, key: bytes, words: tuple[TextElement, ...]) -> None:
        self._seen[key] = words
        while len(self._seen) > _SEEN_LINES:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Line:
    """One line's words as kept, its first reading, and the script model
    that read it (None: the first recogniser's reading stands)."""

    words: tuple[TextElement, ...]
    first: tuple[TextElement, ...]
    script: str | None = None


def _in_own_rows(words: Sequence[TextElement], piece: Image) -> tuple[TextElement, ...]:
    """Words with their boxes cut to the line's own rows, as the first
    reading's are: the detector's box may hold the next line's ascenders, and
    a box reaching into the next line would read as part of it.  Words
    centred outside those rows are bits of the neighbours' glyphs."""
    top, bottom = text_rows(ink_mask(piece))
    return tuple(TextElement(w.text, w.x0, max(w.y0, top), w.x1, max(min(w.y1, bottom), top + 1),
                             w.confidence) for w in words
                 if top <= (w.y0 + w.y1) / 2 < bottom)  # not a speck of the next line


def _neighbours(a: Box, b: Box) -> bool:
    """Lines of one paragraph or column: overlapping across, at most about a
    line's height apart."""
    height = max(a[3] - a[1], b[3] - b[1])
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    gap = max(a[1], b[1]) - min(a[3], b[3])
    return overlap > 0 and gap <= height


def _pad_to_grid(crop: Image) -> Image:
    """Pad right and bottom to multiples of the detector's grid.

    Without it the detector's preprocessing stretches the crop slightly, and
    the same text read in two crops gets boxes a pixel apart.
    """
    height, width = crop.shape[:2]
    bottom, right = -height % DETECTOR_GRID, -width % DETECTOR_GRID
    if not bottom and not right:
        return crop
    padded = cv2.copyMakeBorder(crop, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    return np.asarray(padded, dtype=np.uint8)


def _models_folder() -> Path:
    try:
        import rapidocr_onnxruntime  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ModelUnavailable(
            "the OCR models come with the 'rapidocr-onnxruntime' package: "
            f"pip install rapidocr-onnxruntime ({exc})") from exc
    folder = Path(rapidocr_onnxruntime.__file__).parent / "models"
    if not (folder / _DETECTION_MODEL).is_file():
        raise ModelUnavailable(f"OCR model files are missing from {folder}; "
                               "reinstall rapidocr-onnxruntime")
    return folder


def _quad_to_box(quad: Any, width: int, height: int) -> Box:
    xs, ys = quad[:, 0], quad[:, 1]
    return (max(0, int(np.floor(xs.min()))), max(0, int(np.floor(ys.min()))),
            min(width, int(np.ceil(xs.max())) + 1), min(height, int(np.ceil(ys.max())) + 1))


def _widen(box: Box, width: int) -> Box:
    """The line's box a little wider on both sides (inside ``width``).

    The detector's box may end inside a line's first or last glyph, more so
    where the glyph is faint or small (a tilde at a terminal's left edge); the
    recogniser then drops it ("/Bilder" for "~/Bilder").  Words are shrunk to
    their ink afterwards, so the margin never shows in their boxes.
    """
    x0, y0, x1, y1 = box
    margin = min(_LINE_MARGIN_MAX, round(_LINE_MARGIN * (y1 - y0)))
    return (max(0, x0 - margin), y0, min(width, x1 + margin), y1)


def _piece_key(piece: Image) -> bytes:
    digest = hashlib.blake2b(piece.tobytes(), digest_size=16)
    digest.update(repr(piece.shape).encode())
    return digest.digest()


def _shift_box(box: Box, dx: int, dy: int) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def _shift(word: TextElement, dx: int, dy: int) -> TextElement:
    return TextElement(word.text, word.x0 + dx, word.y0 + dy, word.x1 + dx, word.y1 + dy,
                       word.confidence)


def decode_frame(frame: Frame) -> Image:
    """The frame as a BGR array (the channel order the OCR models were trained on)."""
    buffer = np.frombuffer(frame.png, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise FrameDecodeError(f"frame {frame.sha256[:12]} is not a readable image: {exc}") from exc
    if image is None:
        raise FrameDecodeError(f"frame {frame.sha256[:12]} is not a readable image")
    return np.asarray(image, dtype=np.uint8)


@dataclass(slots=True)
class ParseStats:
    """Counters that show what the parser saved (cache hits, partial reads)."""

    cache_hits: int = 0
    full_reads: int = 0
    partial_reads: int = 0
    regions_read: int = 0


@dataclass(slots=True)
class _Parsed:
    image: Image
    elements: tuple[TextElement, ...]


@dataclass(slots=True)
class OcrScreenParser:
    """A :class:`~agent.perception.screen.ScreenParser` that reads only what changed.

    ``full_read_above``: if the changed rectangles cover more than this share
    of the frame, the whole frame is read instead (cheaper than many pieces).
    Thread-safe: one parse at a time.
    """

    reader: TextReader
    cache_size: int = 32
    full_read_above: float = 0.5
    stats: ParseStats = field(default_factory=ParseStats)
    _cache: OrderedDict[str, tuple[TextElement, ...]] = field(
        default_factory=OrderedDict, init=False, repr=False)
    _previous: _Parsed | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def parse(self, frame: Frame) -> list[TextElement]:
        """Words on the frame, in reading order."""
        with self._lock:
            cached = self._cache.get(frame.sha256)
            if cached is not None:
                self._cache.move_to_end(frame.sha256)
                self.stats.cache_hits += 1
                return list(cached)
            image = decode_frame(frame)
            elements = tuple(_reading_order(self._read(image)))
            self._remember(frame.sha256, image, elements)
            return list(elements)

    def parse_full(self, frame: Frame) -> list[TextElement]:
        """Read the whole frame, bypassing cache and diff (for checks and benchmarks)."""
        image = decode_frame(frame)
        height, width = image.shape[:2]
        return _reading_order(self.reader.read(image, [(0, 0, width, height)]))

    def _read(self, image: Image) -> list[TextElement]:
        height, width = image.shape[:2]
        previous = self._previous
        if previous is None or previous.image.shape != image.shape:
            return self._read_whole(image)
        regions = _regions_to_read(changed_regions(previous.image, image),
                                   [e.box for e in previous.elements], width, height)
        if area_fraction(regions, width, height) > self.full_read_above:
            return self._read_whole(image)
        kept = [e for e in previous.elements if not any(intersects(e.box, r) for r in regions)]
        self.stats.partial_reads += 1
        self.stats.regions_read += len(regions)
        return kept + self.reader.read(image, regions)

    def _read_whole(self, image: Image) -> list[TextElement]:
        height, width = image.shape[:2]
        self.stats.full_reads += 1
        return self.reader.read(image, [(0, 0, width, height)])

    def _remember(self, sha256: str, image: Image, elements: tuple[TextElement, ...]) -> None:
        self._previous = _Parsed(image, elements)
        self._cache[sha256] = elements
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _regions_to_read(changed: list[Box], words: list[Box], width: int,
                     height: int) -> list[Box]:
    """Changed regions grown over the words they cut, on the detector's grid.

    On the grid, a line of text that did not change sits at the same offset
    from the detector's stride as in the earlier read, gets the same box,
    and so its words come from the reader's memory instead of the model.
    """
    regions = grow_to_cover(changed, words)
    for _ in range(_ALIGN_ATTEMPTS):
        aligned = merge_overlapping(align_to_grid(r, DETECTOR_GRID, width, height)
                                    for r in regions)
        regions = grow_to_cover(aligned, words)
        if regions == aligned:
            break
    return regions


def _reading_order(elements: list[TextElement]) -> list[TextElement]:
    return [word for line in group_lines(elements) for word in line]
