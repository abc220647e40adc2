"""Chinese, Japanese and Korean text shows as glyphs, not boxes: the desktop has a CJK
font (fonts-wqy-zenhei), so the offline OCR reads back what the terminal printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.screen import read_lines
from sandbox.actions import Key, TypeText
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

CJK = "世界你好"


def printed_cjk_is_read_back(box: Sandbox, poll: Callable[..., Any]) -> None:
    box.execute(Key(keys=["ctrl", "alt", "t"]))
    poll(lambda: box.screenshot().window_title == "xterm", what="the terminal")
    box.execute(TypeText(text=f"clear; printf '%s\\n' '{CJK}'\n"))
    parser = OcrScreenParser(RapidOcrReader.load(threads=2))
    lines = poll(lambda: [line for line in read_lines(parser.parse(box.screenshot()))
                          if CJK in line.replace(" ", "")], what=f"{CJK} read on screen")
    assert lines


@pytest.mark.x11
def test_the_local_desktop_shows_cjk_text(poll: Callable[..., Any]) -> None:
    with LocalSandbox() as box:
        fonts = box.check(["fc-list", ":lang=zh"]).stdout
        assert fonts.strip(), "no CJK font on the host (scripts/debian-packages.txt)"
        printed_cjk_is_read_back(box, poll)
