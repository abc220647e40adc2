"""Screen capture: grabs of the X screen (mss), their PNG encoding (Pillow), and comparing them."""

from __future__ import annotations

import io
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import mss
from PIL import Image, ImageChops

CARET_MAX_W = 24  # a difference inside a box this small is a caret, not a change
CARET_MAX_H = 48


@dataclass(frozen=True)
class Capture:
    """Raw BGRX pixels of one grab."""

    raw: bytearray
    width: int
    height: int
    at: float  # time.monotonic() of the grab
    wall: float  # time.time() of the grab


class Screen:
    """Grabs the X screen with mss and encodes grabs as PNG."""

    def __init__(self, display_name: str, width: int, height: int) -> None:
        factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 renamed the factory
        self._mss = factory(display=display_name)
        self.display_name = display_name
        self.width, self.height = width, height
        # One worker: zlib releases the GIL, so encoding overlaps the grabs of settling.
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png")
        self._last: tuple[Capture, bytes] | None = None  # screens often repeat between requests

    def grab(self, left: int = 0, top: int = 0, width: int = 0, height: int = 0) -> Capture:
        width, height = width or self.width, height or self.height
        wall, at = time.time(), time.monotonic()
        shot = self._mss.grab({"left": left, "top": top, "width": width, "height": height})
        return Capture(raw=shot.raw, width=width, height=height, at=at, wall=wall)

    def png(self, capture: Capture) -> bytes:
        """The capture as PNG; a screen identical to the last one encoded costs nothing."""
        last = self._last
        if last is not None and (last[0].width, last[0].height, last[0].raw) == \
                (capture.width, capture.height, capture.raw):
            return last[1]
        png = encode_png(capture)
        self.remember(capture, png)
        return png

    def remember(self, capture: Capture, png: bytes) -> None:
        self._last = (capture, png)

    def encode_later(self, capture: Capture) -> Future[bytes]:
        return self._encoder.submit(encode_png, capture)

    def close(self) -> None:
        self._encoder.shutdown(cancel_futures=True)
        self._mss.close()


def encode_png(capture: Capture) -> bytes:
    image = Image.frombytes("RGB", (capture.width, capture.height), capture.raw, "raw", "BGRX")
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _as_image(capture: Capture) -> Image.Image:
    # Channel order does not matter for a difference; RGBX keeps getbbox on every band.
    return Image.frombuffer("RGBX", (capture.width, capture.height), capture.raw,
                            "raw", "RGBX", 0, 1)


def looks_unchanged(a: Capture, b: Capture) -> bool:
    """Equal, or different only inside a caret-sized box (a blinking cursor)."""
    if a.raw == b.raw:
        return True
    box = ImageChops.difference(_as_image(a), _as_image(b)).getbbox()
    return box is None or (box[2] - box[0] <= CARET_MAX_W and box[3] - box[1] <= CARET_MAX_H)


