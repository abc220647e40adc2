"""The lean OCR runtime: detection bands, bounded recognition batches, peak memory."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.perception.ocr import RapidOcrReader
from agent.perception.ocr_models import (
    BAND_OVERLAP,
    BATCH_COLUMNS,
    GRID,
    REC_HEIGHT,
    LineRecognizer,
    detection_bands,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("height", [384, 416, 704, 800, 1088, 1440, 2160])
def test_bands_cover_the_image_overlapping_and_share_it_without_gaps(height: int) -> None:
    bands = detection_bands(height)
    assert (bands[0][0], bands[-1][1]) == (0, height)
    assert (bands[0][2], bands[-1][3]) == (0, height)
    assert len({bottom - top for top, bottom, _, _ in bands}) == 1  # one height for all
    for (_, bottom, _, keep_to), (next_top, _, next_from, _) in itertools.pairwise(bands):
        assert bottom - next_top > BAND_OVERLAP
        assert keep_to == next_from
        # a line up to the overlap's height, centred in either share, lies inside its band
        assert keep_to + BAND_OVERLAP / 2 <= bottom
        assert next_from - BAND_OVERLAP / 2 >= next_top
    if height % GRID == 0:
        assert all(top % GRID == 0 for top, *_ in bands)


def test_a_short_image_is_read_in_one_pass() -> None:
    assert detection_bands(200) == [(0, 200, 0.0, 200.0)]


def test_recognition_batches_stay_within_the_column_budget(reader: RapidOcrReader) -> None:
    recognizer = reader._recognizer
    assert isinstance(recognizer, LineRecognizer)
    rng = np.random.default_rng(7)
    widths = [40, 90, 300, 700, 1280, 1280, 120, 2600, 60, 500]
    lines = [rng.integers(0, 255, (16, w, 3), dtype=np.uint8) for w in widths]

    batches = recognizer._batches(lines)

    assert sorted(i for batch in batches for i in batch) == list(range(len(lines)))
    for batch in batches:
        widest = max(max(320, int(REC_HEIGHT * lines[i].shape[1] / 16)) for i in batch)
        assert len(batch) == 1 or len(batch) * widest <= BATCH_COLUMNS
    assert len(recognizer(lines)) == len(lines)


PEAK_PROBE = """
import sys
from agent.perception.bench import desktop_frame
from agent.perception.ocr import OcrScreenParser, RapidOcrReader

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024

parser = OcrScreenParser(RapidOcrReader.load(threads=1))
loaded = rss("VmRSS")
words = parser.parse(desktop_frame(6, "10:00"))
print(rss("VmHWM") - loaded, len(words))
"""


@pytest.mark.slow
def test_reading_a_whole_desktop_frame_needs_little_memory_beyond_the_models() -> None:
    # RapidOCR's own wrappers peaked ~300 MiB above the loaded models on this frame.
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=True)
    peak_mib, words = (int(v) for v in done.stdout.split())
    assert words > 60
    assert peak_mib <= 150, f"reading one frame took {peak_mib} MiB beyond the models"
