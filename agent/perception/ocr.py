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

import hashlib
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
    align_to_grid,
    area_fraction,
    changed_regions,
    grow_to_cover,
    intersects,
    merge_overlapping,
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
# it is at least this wide in character pitches, in text heights and in the
# line's median glyph gap.  Measured on ~9,900 character pairs of drawn
# DejaVu Sans/Mono/Serif text, 12-18 px: 0.1 % of pairs split wrongly.
_SPACE_PITCHES = 0.4
_SPACE_HEIGHTS = 0.25
_SPACE_USUAL_GAPS = 2.5
# The detector's total stride: its input sides must be multiples of it.
DETECTOR_GRID = 32
# Aligning and growing regions alternate until both hold; a few rounds do.
_ALIGN_ATTEMPTS = 4
# Line images whose words are remembered (a few screens' worth).
_SEEN_LINES = 512
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
    """One recognised line image: its text, per-character columns and confidences."""

    width: int
    height: int
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
        # Words of recently read line images, keyed by the pixels of their
        # ink (so a box a pixel wider does not matter), placed relative to
        # that ink: a line that moved or was detected again is not re-read.
        self._seen: OrderedDict[bytes, tuple[TextElement, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.recognised_lines = 0

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
            with self._lock:
                words = self._recognize(crop, self._detect(crop))
        except _runtime_errors() as exc:
            raise OcrFailed(f"the OCR model failed: {exc}") from exc
        return [_shift(word, x0, y0) for word in words]

    def _detect(self, crop: Image) -> list[Box]:
        height, width = crop.shape[:2]
        if height < 8 or width < 8:
            return []
        scaled: Any = _pad_to_grid(crop)
        if self._det_scale != 1.0:
            scaled = cv2.resize(crop, None, fx=self._det_scale, fy=self._det_scale,
                                interpolation=cv2.INTER_AREA)
        quads, _ = self._detector(scaled)
        if quads is None or len(quads) == 0:
            return []
        return [_quad_to_box(quad / self._det_scale, width, height) for quad in quads]

    def _recognize(self, crop: Image, boxes: list[Box]) -> list[TextElement]:
        boxes = [b for b in boxes if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        pieces = [crop[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
        inked = [_ink_bounds(_ink(piece)) for piece in pieces]
        keys = [_piece_key(piece[y0:y1, x0:x1]) for piece, (x0, y0, x1, y1)
                in zip(pieces, inked, strict=True)]
        unseen = [i for i, key in enumerate(keys) if key not in self._seen]
        if unseen:
            self.recognised_lines += len(unseen)
            results = self._recognizer([pieces[i] for i in unseen], True)[0]
            for i, result in zip(unseen, results, strict=True):
                words = self._read_line(pieces[i], result)
                self._remember(keys[i], tuple(_shift(w, -inked[i][0], -inked[i][1])
                                              for w in words))
        return [_shift(word, box[0] + ink[0], box[1] + ink[1])
                for box, ink, key in zip(boxes, inked, keys, strict=True)
                for word in self._seen[key]]

    def _read_line(self, piece: Image, result: Any) -> tuple[TextElement, ...]:
        line = _line(piece, result)
        if not line.text.strip() or _mean(line.confidences) < self._min_confidence:
            return ()
        return tuple(_words(line, _ink(piece)))

    def _remember(self, key: bytes, words: tuple[TextElement, ...]) -> None:
        self._seen[key] = words
        while len(self._seen) > _SEEN_LINES:
            self._seen.popitem(last=False)


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


def _runtime_errors() -> tuple[type[Exception], ...]:
    """What the OCR stack raises when it fails on an image."""
    from rapidocr_onnxruntime.utils.infer_engine import (  # type: ignore[import-untyped]
        ONNXRuntimeError,
    )

    return (ONNXRuntimeError, cv2.error)


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


def _piece_key(piece: Image) -> bytes:
    digest = hashlib.blake2b(piece.tobytes(), digest_size=16)
    digest.update(repr(piece.shape).encode())
    return digest.digest()


def _line(piece: Image, result: Any) -> _Line:
    text, _score, (column_count, _words, word_columns, _states, confidences) = result
    columns = [column for group in word_columns for column in group]
    if len(columns) != len(text) or len(confidences) != len(text):
        # The decoder groups characters itself; if it ever disagrees with
        # the text, fall back to an even spread rather than misplacing boxes.
        columns = [round((i + 0.5) * column_count / max(len(text), 1)) for i in range(len(text))]
        confidences = [float(_score)] * len(text)
    height, width = piece.shape[:2]
    return _Line(width, height, text, columns, [float(c) for c in confidences],
                 float(column_count))


def _words(line: _Line, ink: InkMask) -> list[TextElement]:
    """Split a line into words, boxes relative to the line image, shrunk to ink."""
    pixels_per_column = line.width / max(line.column_count, 1.0)
    centers = [(column + 0.5) * pixels_per_column for column in line.columns]
    pitch = _pitch(centers, line.text, line.height)
    top, bottom = _text_rows(ink)
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


def _ink_bounds(ink: InkMask) -> Box:
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
    character pitch, the text height and the line's usual gap between glyphs.
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

    def before(self, index: int) -> bool:
        if self._centers[index] - self._centers[index - 1] > _WORD_GAP_PITCHES * self._pitch:
            return True
        blank = self._blank[index]
        return (blank >= _SPACE_PITCHES * self._pitch and blank >= _SPACE_HEIGHTS * self._height
                and blank >= _SPACE_USUAL_GAPS * self._usual)


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
        regions = _regions_to_read(changed_regions(previous.image, image),
                                   [e.box for e in previous.elements], width, height)
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
