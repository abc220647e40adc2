"""Frame redaction with the real OCR on Pillow-drawn screens."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.redaction import MARK, FrameRedactor, redact
from agent.perception.screen import TextElement
from sandbox.base import Frame
from tests.perception.conftest import draw_screen

VALUE = "tangerine-velvet-42-orbit"


def _read(reader: RapidOcrReader, frame: Frame) -> str:
    return " ".join(e.text for e in OcrScreenParser(reader).parse_full(frame))


def _dark(frame: Frame, box: Sequence[int]) -> bool:
    with Image.open(io.BytesIO(frame.png)) as image:
        pixels = np.asarray(image.convert("L"))
    x0, y0, x1, y1 = box
    return float(pixels[y0 + 4:y1 - 4, x0 + 4:x1 - 4].mean()) < 80


def test_a_known_value_is_blacked_out_and_the_rest_of_the_screen_kept(
        reader: RapidOcrReader) -> None:
    frame = draw_screen([(40, 40, f"$ echo {VALUE}", 20), (40, 90, "Build finished", 20)],
                        panels=[(20, 20, 900, 200)])
    redactor = FrameRedactor(OcrScreenParser(reader), secrets=[VALUE])

    guarded = redactor.guard(frame)

    assert len(guarded.boxes) == 1
    assert not guarded.withheld
    assert _dark(guarded.frame, guarded.boxes[0])
    text = _read(reader, guarded.frame)
    assert "tangerine" not in text.lower()
    assert "orbit" not in text.lower()
    assert "Build finished" in text
    assert MARK in text


def test_ocr_confusions_and_a_value_split_over_words_are_still_found(
        reader: RapidOcrReader) -> None:
    redactor = FrameRedactor(OcrScreenParser(reader), secrets=["KEEP-OK-4242-zeta"])
    words = [TextElement("KEEP-0K-4242", 10, 10, 120, 30, 0.9),
             TextElement("zeta", 126, 10, 160, 30, 0.9),
             TextElement("unrelated", 300, 10, 400, 30, 0.9)]

    found = redactor.secret_words(words)

    assert [(e.x0, e.x1) for e in found] == [(10, 160)]


def test_a_value_wrapped_onto_the_next_line_is_found_by_its_pieces(
        reader: RapidOcrReader) -> None:
    secret = "Q7rTz2mWk9LpX4vB8nHs3dFy6GcJ1aE5"
    redactor = FrameRedactor(OcrScreenParser(reader), secrets=[secret])
    words = [TextElement("$", 0, 10, 8, 30, 0.9),
             TextElement("Q7rTz2mWk9LpX4vB", 20, 10, 200, 30, 0.9),
             TextElement("8nHs3dFy6GcJ1aE5", 0, 40, 180, 60, 0.9),
             TextElement("ready", 0, 70, 60, 90, 0.9)]

    found = {e.text for e in redactor.secret_words(words)}

    assert found == {"Q7rTz2mWk9LpX4vB", "8nHs3dFy6GcJ1aE5"}


def test_a_detector_pattern_is_redacted_without_being_told_the_value(
        reader: RapidOcrReader) -> None:
    key = "sk-ant-api03-WkQ9zr7LmT3xB2vN8pYc"
    frame = draw_screen([(40, 40, f"KEY={key}", 20), (40, 90, "hello world", 20)],
                        panels=[(20, 20, 900, 200)])

    guarded = FrameRedactor(OcrScreenParser(reader)).guard(frame)

    assert len(guarded.boxes) == 1
    text = _read(reader, guarded.frame)
    assert "sk-ant" not in text
    assert "WkQ9" not in text
    assert "hello world" in text


def test_a_secret_typed_text_is_hunted_for_once_the_loop_says_so(
        reader: RapidOcrReader) -> None:
    frame = draw_screen([(40, 40, "the password is hunter-forty-two", 20)],
                        panels=[(20, 20, 900, 200)])
    redactor = FrameRedactor(OcrScreenParser(reader))
    assert redactor.guard(frame).boxes == ()

    redactor.remember_secret("hunter-forty-two")

    assert len(redactor.guard(frame).boxes) == 1


def test_the_field_a_secret_was_typed_into_stays_redacted_while_it_looks_the_same(
        reader: RapidOcrReader) -> None:
    before = draw_screen([(40, 40, "Password:", 20)], panels=[(20, 20, 900, 200)])
    # Dots, as a password field shows them: nothing the OCR could match to a value.
    typed = draw_screen([(40, 40, "Password:", 20), (200, 40, "●●●●●●●●", 20)],
                        panels=[(20, 20, 900, 200)])
    redactor = FrameRedactor(OcrScreenParser(reader))
    redactor.guard(before)

    first = redactor.guard(typed, typed_secret=True)
    again = redactor.guard(typed)

    assert first.boxes
    assert first.boxes == again.boxes
    assert all(box[0] >= 180 for box in first.boxes)  # the field, not its label


def test_an_unreadable_frame_after_a_secret_was_typed_is_withheld(
        reader: RapidOcrReader) -> None:
    before = draw_screen([(40, 40, "$", 20)], panels=[(20, 20, 900, 200)])
    after = draw_screen([(40, 40, f"$ {VALUE}", 20)], panels=[(20, 20, 900, 200)])
    redactor = FrameRedactor(OcrScreenParser(reader), ocr_timeout_s=0.0)
    assert redactor.guard(before).withheld == ""  # nothing typed yet: nothing to protect

    redactor.remember_secret(VALUE)
    guarded = redactor.guard(after, typed_secret=True)

    assert "could not be checked for secrets" in guarded.withheld
    assert guarded.boxes
    assert "tangerine" not in _read(reader, guarded.frame).lower()


def test_the_redacted_frame_carries_the_mark_even_where_a_box_is_small(
        reader: RapidOcrReader) -> None:
    frame = draw_screen([(40, 40, "x", 12)])

    marked = redact(frame, [(40, 40, 50, 48)])

    assert marked.sha256 != frame.sha256
    assert marked.size == frame.size
    assert MARK in _read(reader, marked)


def test_a_secret_line_is_remembered_by_its_secret_words_not_its_innocent_ones(
        reader: RapidOcrReader) -> None:
    key = "sk-ant-api03-WkQ9zr7LmT3xB2vN8pYc"
    redactor = FrameRedactor(OcrScreenParser(reader), detectors=())
    redactor.remember_secret(f"export DEMO_KEY={key}\n")
    words = [TextElement("export", 0, 10, 60, 30, 0.9),
             TextElement("PATH=/usr/bin", 70, 10, 200, 30, 0.9),
             TextElement(key, 0, 40, 300, 60, 0.9)]

    assert [e.text for e in redactor.secret_words(words)] == [key]


def test_a_frame_that_is_not_an_image_is_replaced_by_a_marked_black_one_after_a_secret(
        reader: RapidOcrReader) -> None:
    broken = Frame.from_png(b"not a png", 320, 200)
    redactor = FrameRedactor(OcrScreenParser(reader))
    redactor.remember_secret(VALUE)

    guarded = redactor.guard(broken)

    assert guarded.withheld
    assert guarded.boxes == ((0, 0, 320, 200),)
    assert MARK in _read(reader, guarded.frame)
