"""The default screen parser: RapidOCR's ONNX models, offline, on the CPU.

The models (PP-OCRv4 detection and recognition) ship inside the
``rapidocr-onnxruntime`` wheel; nothing is downloaded at run time.

:class:`RapidOcrReader` reads words from one rectangle of an image.
:class:`OcrScreenParser` wraps any such reader with two savings:

* an LRU cache keyed by the frame's sha256, and
* incremental parsing: a frame is compared with the one parsed before it, and
  only the rectangles that changed are read again; words outside them are
  kept.  When most of the screen changed, the whole frame is read.

Build it once at the edge and pass it down::

    parser = OcrScreenParser(RapidOcrReader.load(threads=2))
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from agent.perception.errors import FrameDecodeError, ModelUnavailable, OcrFailed
from agent.perception.regions import (
    Box,
    Image,
    area_fraction,
    changed_regions,
    grow_to_cover,
    intersects,
)
from agent.perception.screen import TextElement, group_lines
from sandbox.base import Frame

_DETECTION_MODEL = "ch_PP-OCRv4_det_infer.onnx"
_RECOGNITION_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
# The recogniser sees text scaled to this height; its output has one
# column per 8 pixels of that scaled width (the model's stride).
_REC_HEIGHT = 48
# A jump of more than this many character pitches between two characters
# with no space decoded between them is a gap between words: menu labels
# are spaced wider than a space, and the recogniser often drops it.
_WORD_GAP_PITCHES = 2.4
# Otherwise a blank stripe between two characters is a (dropped) space when
# it is at least this wide, in character pitches and in text heights (tuned
# on drawn DejaVu Sans/Mono screens: 98.6 % of words come out whole).
_SPACE_PITCHES = 0.5
_SPACE_HEIGHTS = 0.25
# Grey-level distance from the background that counts as ink.
_INK_CONTRAST = 48

# How far ascenders/descenders may reach beyond a line's body, in body heights.
_REACH = 0.45

InkMask = npt.NDArray[np.bool_]


class TextReader(Protocol):
    """Reads the words inside one rectangle of a BGR image."""

    def read(self, image: Image, region: Box) -> list[TextElement]: ...


@dataclass(frozen=True, slots=True)
class _Line:
    """One recognised line: its text, per-character columns and confidences."""

    box: Box
    text: str
    columns: list[int]
    confidences: list[float]
    column_count: float


class RapidOcrReader:
    """Text detection + recognition with RapidOCR's shipped ONNX models.

    ``det_scale`` below 1 shrinks the image before detection: detection cost
    grows with pixels, but at 0.75 small print (11-12 px text) is partly
    missed, so the default reads at full resolution.  Recognition always
    reads the full-resolution crop.
    """

    def __init__(self, detector: Any, recognizer: Any, *, det_scale: float = 1.0,
                 min_confidence: float = 0.5) -> None:
        self._detector = detector
        self._recognizer = recognizer
        self._det_scale = det_scale
        self._min_confidence = min_confidence

    @classmethod
    def load(cls, *, threads: int = 2, det_scale: float = 1.0,
             min_confidence: float = 0.5, rec_batch: int = 6) -> RapidOcrReader:
        """Load the models from the installed wheel (no network)."""
        try:
            from rapidocr_onnxruntime.ch_ppocr_det import (  # type: ignore[import-untyped]
                TextDetector,
            )
            from rapidocr_onnxruntime.ch_ppocr_rec import (  # type: ignore[import-untyped]
                TextRecognizer,
            )
        except ImportError as exc:
            raise ModelUnavailable(
                "the OCR models come with the 'rapidocr-onnxruntime' package: "
                f"pip install rapidocr-onnxruntime ({exc})") from exc
        models = _models_folder()
        detector = TextDetector(_detector_config(models / _DETECTION_MODEL, threads))
        recognizer = TextRecognizer(
            _recognizer_config(models / _RECOGNITION_MODEL, threads, rec_batch))
        return cls(detector, recognizer, det_scale=det_scale, min_confidence=min_confidence)

    def read(self, image: Image, region: Box) -> list[TextElement]:
        """Words inside ``region`` of ``image`` (BGR), boxes in image pixels."""
        x0, y0, x1, y1 = region
        crop = image[y0:y1, x0:x1]
        try:
            words = self._recognize(crop, self._detect(crop))
        except cv2.error as exc:
            raise OcrFailed(f"OpenCV failed while reading text: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ != "ONNXRuntimeError":
                raise
            raise OcrFailed(f"the OCR model failed: {exc}") from exc
        return [_shift(word, x0, y0) for word in words]

    def _detect(self, crop: Image) -> list[Box]:
        height, width = crop.shape[:2]
        if height < 8 or width < 8:
            return []
        scaled: Any = crop
        if self._det_scale != 1.0:
            scaled = cv2.resize(crop, None, fx=self._det_scale, fy=self._det_scale,
                                interpolation=cv2.INTER_AREA)
        quads, _ = self._detector(scaled)
        if quads is None or len(quads) == 0:
            return []
        return [_quad_to_box(quad / self._det_scale, width, height) for quad in quads]

    def _recognize(self, crop: Image, boxes: list[Box]) -> list[TextElement]:
        boxes = [b for b in boxes if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        if not boxes:
            return []
        crops = [crop[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
        results = self._recognizer(crops, True)[0]
        lines = [(_line(box, result), piece)
                 for box, result, piece in zip(boxes, results, crops, strict=True)]
        return [word for line, piece in lines
                if line.text.strip() and _mean(line.confidences) >= self._min_confidence
                for word in _words(line, _ink(piece))]


def _models_folder() -> Path:
    import rapidocr_onnxruntime  # type: ignore[import-untyped]

    folder = Path(rapidocr_onnxruntime.__file__).parent / "models"
    if not (folder / _DETECTION_MODEL).is_file():
        raise ModelUnavailable(f"OCR model files are missing from {folder}; "
                               "reinstall rapidocr-onnxruntime")
    return folder


def _session_options(model: Path, threads: int) -> dict[str, Any]:
    return {"model_path": str(model), "use_cuda": False, "use_dml": False,
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}


def _detector_config(model: Path, threads: int) -> dict[str, Any]:
    # limit_type "max" with a large limit: never upscale a small region (the
    # package default "min" blows a 40-pixel band up to 736 pixels); this
    # reader does its own downscaling (det_scale).
    return {**_session_options(model, threads), "limit_side_len": 8192, "limit_type": "max",
            "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "thresh": 0.3,
            "box_thresh": 0.5, "max_candidates": 1000, "unclip_ratio": 1.6,
            "use_dilation": True, "score_mode": "fast"}


def _recognizer_config(model: Path, threads: int, batch: int) -> dict[str, Any]:
    return {**_session_options(model, threads), "rec_img_shape": [3, _REC_HEIGHT, 320],
            "rec_batch_num": batch}


def _quad_to_box(quad: Any, width: int, height: int) -> Box:
    xs, ys = quad[:, 0], quad[:, 1]
    return (max(0, int(np.floor(xs.min()))), max(0, int(np.floor(ys.min()))),
            min(width, int(np.ceil(xs.max())) + 1), min(height, int(np.ceil(ys.max())) + 1))


def _line(box: Box, result: Any) -> _Line:
    text, _score, (column_count, _words, word_columns, _states, confidences) = result
    columns = [column for group in word_columns for column in group]
    if len(columns) != len(text) or len(confidences) != len(text):
        # The decoder groups characters itself; if it ever disagrees with
        # the text, fall back to an even spread rather than misplacing boxes.
        columns = [round((i + 0.5) * column_count / max(len(text), 1)) for i in range(len(text))]
        confidences = [float(_score)] * len(text)
    return _Line(box, text, columns, [float(c) for c in confidences], float(column_count))


def _words(line: _Line, ink: InkMask) -> list[TextElement]:
    """Split a line into words; each box shrunk to the glyphs' ink."""
    x0, y0, x1, y1 = line.box
    pixels_per_column = (x1 - x0) / max(line.column_count, 1.0)
    centers = [(column + 0.5) * pixels_per_column for column in line.columns]
    pitch = _pitch(centers, line.text, y1 - y0)
    top, bottom = _text_rows(ink)
    blank: InkMask = np.logical_not(ink[top:bottom].any(axis=0))
    gaps = _WordGaps(centers, pitch, blank, bottom - top)
    words = []
    for start, end in _word_spans(line.text, gaps):
        # Generous bounds from the character positions, then shrink to ink.
        left = max(0, int(centers[start] - 0.75 * pitch))
        right = min(x1 - x0, int(np.ceil(centers[end - 1] + 0.75 * pitch)))
        left, right = _ink_columns(ink[top:bottom], left, max(right, left + 1))
        words.append(TextElement(line.text[start:end], x0 + left, y0 + top, x0 + right,
                                 y0 + bottom, round(_mean(line.confidences[start:end]), 4)))
    return words


def _ink(crop: Image) -> InkMask:
    """Pixels that stand out from the crop's background (text of either polarity)."""
    gray = crop.mean(axis=2)
    mask: InkMask = np.abs(gray - np.median(gray)) > _INK_CONTRAST
    return mask


def _text_rows(ink: InkMask) -> tuple[int, int]:
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


@dataclass(frozen=True, slots=True)
class _WordGaps:
    """Tells whether a word break lies between two neighbouring characters.

    The recogniser often drops the space between words.  A break is there if
    the characters' centres are far apart (menu labels), or if a blank
    stripe as wide as a space separates their ink.
    """

    centers: list[float]
    pitch: float
    blank_columns: InkMask
    text_height: int

    def before(self, index: int) -> bool:
        jump = self.centers[index] - self.centers[index - 1]
        if jump > _WORD_GAP_PITCHES * self.pitch:
            return True
        blank = _longest_run(
            self.blank_columns[int(self.centers[index - 1]):int(self.centers[index])])
        return blank >= _SPACE_PITCHES * self.pitch and blank >= _SPACE_HEIGHTS * self.text_height


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
    _cache: OrderedDict[str, tuple[TextElement, ...]] = field(default_factory=OrderedDict)
    _previous: _Parsed | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        return _reading_order(self.reader.read(image, (0, 0, width, height)))

    def _read(self, image: Image) -> list[TextElement]:
        height, width = image.shape[:2]
        previous = self._previous
        if previous is None or previous.image.shape != image.shape:
            return self._read_whole(image)
        regions = changed_regions(previous.image, image)
        regions = grow_to_cover(regions, [e.box for e in previous.elements])
        if area_fraction(regions, width, height) > self.full_read_above:
            return self._read_whole(image)
        kept = [e for e in previous.elements if not any(intersects(e.box, r) for r in regions)]
        self.stats.partial_reads += 1
        self.stats.regions_read += len(regions)
        return kept + [word for region in regions for word in self.reader.read(image, region)]

    def _read_whole(self, image: Image) -> list[TextElement]:
        height, width = image.shape[:2]
        self.stats.full_reads += 1
        return self.reader.read(image, (0, 0, width, height))

    def _remember(self, sha256: str, image: Image, elements: tuple[TextElement, ...]) -> None:
        self._previous = _Parsed(image, elements)
        self._cache[sha256] = elements
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _reading_order(elements: list[TextElement]) -> list[TextElement]:
    return [word for line in group_lines(elements) for word in line]
