"""The words on a picture, for the approval card: what the screen says around a target.

Read with deskhand's offline OCR (:mod:`agent.perception.ocr`) when it is
installed; its model loads once, on first use, in the worker thread that
asks — never on the UI thread.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

from PIL import Image

from sandbox.base import Frame

WordsReader = Callable[[Image.Image], str]

MAX_CHARS = 160


class OcrWords:
    """Reads a picture's text as one line: phrases in reading order, ``·`` between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parser: object | None = None
        self._unavailable = False

    def __call__(self, image: Image.Image) -> str:
        parser = self._load()
        if parser is None:
            return ""
        from agent.perception.screen import read_lines

        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=1)
        frame = Frame.from_png(buffer.getvalue(), image.width, image.height)
        text = " · ".join(read_lines(parser.parse(frame)))  # type: ignore[attr-defined]
        return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"

    def _load(self) -> object | None:
        with self._lock:
            if self._parser is None and not self._unavailable:
                try:
                    from agent.perception.ocr import OcrScreenParser, RapidOcrReader

                    self._parser = OcrScreenParser(RapidOcrReader.load(threads=1))
                except Exception:  # no OCR here: the card shows the picture alone
                    self._unavailable = True
            return self._parser
