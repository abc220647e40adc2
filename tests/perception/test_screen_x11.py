"""The OCR parser on real frames from a real X desktop (Xvfb + openbox + xterm/mousepad)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from agent.perception.ocr import OcrScreenParser, decode_frame
from agent.perception.screen import TextElement, find_text, wait_for_text
from sandbox.base import Frame

if TYPE_CHECKING:
    from tests.perception.conftest import Desktop

pytestmark = pytest.mark.x11


@pytest.fixture(scope="module")
def xterm(desktop: Desktop) -> str:
    desktop.start(["xterm", "-geometry", "80x16+20+20", "-fa", "DejaVu Sans Mono", "-fs", "12",
                   "-e", "bash", "--norc", "--noprofile"], PS1="$ ")
    window = desktop.wait_window("xterm")
    desktop.xdotool("windowactivate", "--sync", window)
    return window


def run_in_xterm(desktop: Desktop, window: str, command: str) -> None:
    desktop.xdotool("windowactivate", "--sync", window)
    desktop.xdotool("type", "--delay", "10", command)
    desktop.xdotool("key", "Return")


def ink(frame: Frame, box: tuple[int, int, int, int]) -> int:
    """How many dark pixels (text) lie in the box."""
    x0, y0, x1, y1 = box
    gray = decode_frame(frame)[y0:y1, x0:x1].mean(axis=2)
    return int((gray < 100).sum())


def test_an_echoed_command_and_its_output_are_found_where_they_are_drawn(
        desktop: Desktop, xterm: str, parser: OcrScreenParser) -> None:
    run_in_xterm(desktop, xterm, "echo deskhand sees 4217")

    output = wait_for_text(desktop.grab, parser, "deskhand sees 4217", occurrence=2,
                           timeout_s=30)
    frame = desktop.grab()
    command = find_text(parser.parse(frame), "echo deskhand sees 4217")

    assert command is not None
    assert output.y0 >= command.y1 - 6, "the output line is drawn below the command"
    # The output starts at the left margin, the command after the "$ " prompt.
    assert 10 < command.x0 - output.x0 < 40
    assert 10 <= output.height <= 40
    assert ink(frame, output.box) > 100, "the box covers the drawn glyphs"
    after = (output.x1 + 4, output.y0, output.x1 + 60, output.y1)
    assert ink(frame, after) == 0, "nothing is drawn right after the matched text"


def test_a_word_inside_a_line_gets_its_own_box(desktop: Desktop, xterm: str,
                                               parser: OcrScreenParser) -> None:
    run_in_xterm(desktop, xterm, "echo alpha bravo charlie")
    line = wait_for_text(desktop.grab, parser, "alpha bravo charlie", occurrence=2,
                         timeout_s=30)
    bravo = find_text(parser.parse(desktop.grab()), "bravo", occurrence=2)

    assert bravo is not None
    assert line.x0 < bravo.x0 < bravo.x1 < line.x1
    # "alpha " is 6 of 19 monospace characters: bravo starts about a third in.
    assert abs((bravo.x0 - line.x0) / (line.x1 - line.x0) - 6 / 19) < 0.05


def test_the_same_frame_is_parsed_once(desktop: Desktop, xterm: str,
                                       parser: OcrScreenParser) -> None:
    frame = desktop.grab()
    first = parser.parse(frame)
    again = parser.parse(Frame.from_png(frame.png, frame.width, frame.height))

    assert again == first
    assert parser.stats.cache_hits == 1
    assert parser.stats.full_reads == 1


def confident_words(elements: list[TextElement]) -> set[str]:
    return {e.text for e in elements if e.confidence >= 0.9 and len(e.text) >= 3}


def test_reading_only_the_changed_region_matches_reading_the_whole_frame(
        desktop: Desktop, xterm: str, parser: OcrScreenParser) -> None:
    before = desktop.grab()
    parser.parse(before)
    run_in_xterm(desktop, xterm, "echo incremental 8841 works")
    wait_for_text(desktop.grab, OcrScreenParser(parser.reader), "incremental 8841 works",
                  occurrence=2, timeout_s=30)
    after = desktop.grab()

    partial = parser.parse(after)
    whole = parser.parse_full(after)

    assert parser.stats.partial_reads == 1
    words_partial, words_whole = confident_words(partial), confident_words(whole)
    overlap = len(words_partial & words_whole) / len(words_partial | words_whole)
    assert overlap >= 0.9, (words_partial ^ words_whole)
    new_partial = find_text(partial, "incremental 8841 works", occurrence=2)
    new_whole = find_text(whole, "incremental 8841 works", occurrence=2)
    assert new_partial is not None
    assert new_whole is not None
    assert np.allclose(new_partial.box, new_whole.box, atol=4)


@pytest.fixture(scope="module")
def mousepad(desktop: Desktop) -> str:
    if shutil.which("mousepad") is None:
        pytest.skip("mousepad is not installed (apt-get install mousepad)")
    folder = Path(tempfile.mkdtemp(prefix="deskhand-perception-"))
    document = folder / "notes.txt"
    document.write_text("Quarterly report draft\nRevenue grew by 12 percent.\n")
    desktop.start(["mousepad", str(document)], GSETTINGS_BACKEND="memory", NO_AT_BRIDGE="1",
                  HOME=str(folder))
    window = desktop.wait_window("mousepad")
    desktop.xdotool("windowactivate", "--sync", window)
    return window


def test_clicking_the_found_menu_label_opens_that_menu(desktop: Desktop, mousepad: str,
                                                       parser: OcrScreenParser) -> None:
    label = wait_for_text(desktop.grab, parser, "Document", exact=True, timeout_s=30)

    x, y = label.center
    desktop.xdotool("mousemove", "--sync", str(x), str(y), "click", "1")
    try:
        # Items of mousepad's Document menu, shown only once that menu is open.
        item = wait_for_text(desktop.grab, parser, "Word Wrap", timeout_s=30)
    finally:
        desktop.xdotool("key", "Escape")
    assert item.y0 > label.y1 - 4, "the menu opens below its label"
