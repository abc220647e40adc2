"""RapidOCR's two shipped ONNX models (text lines, then their characters), run lean.

RapidOCR's own wrappers read a whole frame in one detector pass and batch six
line images padded to the widest; each session has its own allocator with
the memory-pattern planner on.  On a 1280x800 desktop the first read then
peaked ~300 MiB above the loaded models, and a screen of long terminal lines
~500 MiB (measured; README, "What a model run costs").  Here, with the same
models and RapidOCR's own pre- and post-processing steps:

* **Bands.**  The detector reads about :data:`BAND_ROWS` rows at a time
  (:func:`detection_bands`); its activations grow with the pixels of one
  pass.  Bands overlap by more than :data:`BAND_OVERLAP` rows, so a line up
  to that tall is whole in one band, and each band keeps the lines whose
  centre lies in its own share.
* **Narrow batches.**  A recognition batch holds at most
  :data:`BATCH_COLUMNS` columns of 48-pixel-high line image in all (one
  full-width line of small print, or six short phrases).
* **One arena.**  Both sessions draw from one CPU arena, grown in powers of
  two from a 32 MiB first chunk, so the recogniser reuses what the detector
  freed instead of growing a heap of its own, and the blocks past the first
  chunk go back after every run (between frames the models hold only that
  chunk).  Memory-pattern planning is off: every changed region has a shape
  of its own, and a plan per shape is memory held for nothing.

Build once through :meth:`agent.perception.ocr.RapidOcrReader.load`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from agent.perception.errors import OcrFailed
from agent.perception.regions import Image

Quad = npt.NDArray[np.float32]  # four (x, y) corners of a text line

BAND_ROWS = 384
BAND_OVERLAP = 64
GRID = 32  # the detector's stride: band tops on it read like the frame around them
BATCH_COLUMNS = 3840
MAX_BATCH = 6
REC_HEIGHT = 48  # the recogniser's input height
_REC_MIN_WIDTH = 320
_FIRST_ARENA_CHUNK = 32 * 1024 * 1024
_NEXT_POWER_OF_TWO = 0  # onnxruntime's arena_extend_strategy values
_MIN_SIDE = 3  # the detector's lines thinner than this are noise (as in RapidOCR)

_arena_lock = threading.Lock()
_arena_registered = False


class OnnxModel:
    """One shipped model in an onnxruntime session that draws from the shared CPU arena
    and gives the arena's extra blocks back after every run (its first chunk stays)."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from onnxruntime.capi import onnxruntime_pybind11_state as state  # type: ignore[import-untyped]

        _register_shared_arena(ort)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.enable_mem_pattern = False
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.use_env_allocators", "1")
        self._session = ort.InferenceSession(str(path), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._failures = (state.Fail, state.InvalidArgument, state.RuntimeException,
                          state.EPFail)

    def run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The model's first output for ``batch``."""
        try:
            output: npt.NDArray[np.float32] = self._session.run(
                None, {self._input: batch}, self._shrink)[0]
        except self._failures as exc:
            raise OcrFailed(f"the OCR model failed: {exc}") from exc
        return output

    def metadata(self, key: str) -> str:
        """A custom metadata entry of the model file (the recogniser's alphabet)."""
        value: str = self._session.get_modelmeta().custom_metadata_map[key]
        return value


def _register_shared_arena(ort: Any) -> None:
    """Register the process's one CPU arena with onnxruntime (once: a second
    registration of the same device is an error)."""
    global _arena_registered
    with _arena_lock:
        if _arena_registered:
            return
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                   ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(
            memory, ort.OrtArenaCfg(0, _NEXT_POWER_OF_TWO, _FIRST_ARENA_CHUNK, -1))
        _arena_registered = True


def _normalised(image: Image) -> npt.NDArray[np.float32]:
    """``image`` (HxWx3, uint8) as the models want it: CHW, float32, in [-1, 1]."""
    scaled: npt.NDArray[np.float32] = image.astype(np.float32)
    scaled *= 2.0 / 255.0
    scaled -= 1.0
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


class LineDetector:
    """Finds text lines (DB, PP-OCRv4), band by band."""

    def __init__(self, model: OnnxModel, *, thresh: float = 0.3, box_thresh: float = 0.5,
                 unclip_ratio: float = 1.6) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import (  # type: ignore[import-untyped]
            DBPostProcess,
        )

        self._model = model
        self._boxes = DBPostProcess(thresh=thresh, box_thresh=box_thresh, max_candidates=1000,
                                    unclip_ratio=unclip_ratio, score_mode="fast",
                                    use_dilation=True)

    def __call__(self, image: Image) -> list[Quad]:
        """Lines of ``image`` (BGR; sides multiples of 32 read without rescaling)."""
        height = image.shape[0]
        quads: list[Quad] = []
        for top, bottom, keep_from, keep_to in detection_bands(height):
            for quad in self._detect(image[top:bottom]):
                quad[:, 1] += top
                if keep_from <= float(quad[:, 1].min() + quad[:, 1].max()) / 2 < keep_to:
                    quads.append(quad)
        return quads

    def _detect(self, image: Image) -> list[Quad]:
        height, width = image.shape[:2]
        scaled = _fit_detector(image)
        prediction = self._model.run(_normalised(scaled)[np.newaxis])
        found, _scores = self._boxes(prediction, (height, width))
        return [_clipped(np.asarray(q, dtype=np.float32), width, height) for q in found
                if _sides(q) > _MIN_SIDE]


def detection_bands(height: int, rows: int = BAND_ROWS, overlap: int = BAND_OVERLAP,
                    grid: int = GRID) -> list[tuple[int, int, float, float]]:
    """``(top, bottom, keep_from, keep_to)`` of each band of an image ``height`` rows tall
    (a multiple of ``grid``): the rows to read, and where a line's centre must lie to
    be this band's.

    The fewest bands of about ``rows`` rows, all of one height (each reads with the
    same context above and below), spread evenly with their tops on the detector's
    grid, and overlapping by more than ``overlap``; a band's share ends in the middle
    of its overlap with the next.
    """
    if height <= rows:
        return [(0, height, 0.0, float(height))]
    count = math.ceil((height - overlap) / (rows - overlap))
    size = _round_up(math.ceil((height + (count - 1) * (overlap + grid)) / count), grid)
    tops = [(k * (height - size) // (count - 1)) // grid * grid for k in range(count - 1)]
    tops.append(height - size)
    bounds = [0.0] + [(tops[k + 1] + tops[k] + size) / 2 for k in range(count - 1)] \
        + [float(height)]
    return [(top, top + size, bounds[k], bounds[k + 1]) for k, top in enumerate(tops)]


def _round_up(value: int, grid: int) -> int:
    return -(-value // grid) * grid


def _fit_detector(image: Image) -> Image:
    """RapidOCR's detector sizing: a long side past 2000 px is scaled down to it
    (960 and 1500 px below that), both sides rounded to multiples of 32."""
    height, width = image.shape[:2]
    longest = max(height, width)
    limit = 960 if longest < 960 else 1500 if longest < 1500 else 2000
    ratio = min(1.0, limit / longest)
    size = (max(32, round(width * ratio / 32) * 32), max(32, round(height * ratio / 32) * 32))
    if size == (width, height):
        return image
    return np.asarray(cv2.resize(image, size), dtype=np.uint8)


def _sides(quad: Any) -> int:
    corners = np.asarray(quad, dtype=np.float32)
    return min(int(np.linalg.norm(corners[0] - corners[1])),
               int(np.linalg.norm(corners[0] - corners[3])))


def _clipped(quad: Quad, width: int, height: int) -> Quad:
    """Corners moved inside the image and cut to whole pixels (as RapidOCR does)."""
    quad[:, 0] = np.clip(quad[:, 0], 0, width - 1).astype(np.int32)
    quad[:, 1] = np.clip(quad[:, 1], 0, height - 1).astype(np.int32)
    return quad


class LineRecognizer:
    """Reads line images (CRNN, PP-OCRv4) in batches of bounded width.

    Each result is RapidOCR's ``(text, score, word-box details)``, the form
    :func:`agent.perception.words.recognised_line` reads.
    """

    def __init__(self, model: OnnxModel, *, batch_columns: int = BATCH_COLUMNS,
                 max_batch: int = MAX_BATCH) -> None:
        from rapidocr_onnxruntime.ch_ppocr_rec.utils import (  # type: ignore[import-untyped]
            CTCLabelDecode,
        )

        characters = model.metadata("character").splitlines()
        self._model = model
        self._decode = CTCLabelDecode(character=characters)
        self._batch_columns = batch_columns
        self._max_batch = max_batch

    def __call__(self, lines: Sequence[Image]) -> list[Any]:
        results: list[Any] = [None] * len(lines)
        for batch in self._batches(lines):
            for index, result in zip(batch, self._read([lines[i] for i in batch]),
                                     strict=True):
                results[index] = result
        return results

    def _batches(self, lines: Sequence[Image]) -> list[list[int]]:
        """Indices in order of aspect ratio (like widths together, as RapidOCR sorts them),
        cut where a batch padded to its widest would pass the column budget."""
        order = sorted(range(len(lines)), key=lambda i: _aspect(lines[i]))
        batches: list[list[int]] = []
        for index in order:
            batch = batches[-1] if batches else []
            widest = _padded_width(_aspect(lines[index]))
            if not batch or len(batch) == self._max_batch \
                    or (len(batch) + 1) * widest > self._batch_columns:
                batches.append([index])
            else:
                batch.append(index)
        return batches

    def _read(self, lines: Sequence[Image]) -> list[Any]:
        aspects = [_aspect(line) for line in lines]
        widest = max([_REC_MIN_WIDTH / REC_HEIGHT, *aspects])
        columns = _padded_width(widest)
        batch = np.stack([_rec_input(line, columns) for line in lines])
        decoded: list[Any] = self._decode(self._model.run(batch), True,
                                          wh_ratio_list=aspects, max_wh_ratio=widest)
        return decoded


def _aspect(line: Image) -> float:
    return float(line.shape[1]) / float(line.shape[0])


def _padded_width(aspect: float) -> int:
    return max(_REC_MIN_WIDTH, int(REC_HEIGHT * aspect))


def _rec_input(line: Image, columns: int) -> npt.NDArray[np.float32]:
    """One line scaled to 48 rows (at most ``columns`` wide), normalised, zero-padded."""
    width = min(columns, math.ceil(REC_HEIGHT * _aspect(line)))
    scaled = np.asarray(cv2.resize(line, (width, REC_HEIGHT)), dtype=np.uint8)
    padded = np.zeros((3, REC_HEIGHT, columns), dtype=np.float32)
    padded[:, :, :width] = _normalised(scaled)
    return padded
