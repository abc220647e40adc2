"""The screenshot space an MCP client sees, and images it will accept.

Clients reject images over 1 MB or with a long side over about 1568 px, and
models point more reliably on smaller images.  :class:`ScreenSpace` fixes one
screenshot size per session (the screen scaled to fit, never upscaled), maps
the client's points back to sandbox pixels exactly (the same
:class:`~agent.wire_actions.CoordinateScaler` the model planners use) and
encodes frames under the byte limit: PNG when it fits, JPEG of falling
quality when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.planners.screenshots import EncodedImage, ScreenshotEncoder, fit_within
from agent.wire_actions import CoordinateScaler
from sandbox.base import Frame, Size

MAX_LONG_SIDE_PX = 1568
MAX_IMAGE_BYTES = 1_000_000
JPEG_QUALITIES = (85, 70, 55, 40, 25)


def frame_id(frame: Frame) -> str:
    """A short name for a frame, the start of its sha256 (as stored in the audit log)."""
    return frame.sha256[:12]


def screenshot_size(screen: Size) -> Size:
    """The size the client sees: ``screen`` fitted within the long-side and pixel limits."""
    return fit_within(screen, Size(MAX_LONG_SIDE_PX, MAX_LONG_SIDE_PX))


class ImageTooLarge(RuntimeError):
    """No encoding of the frame fits the byte limit (never seen on a desktop)."""


@dataclass
class ScreenSpace:
    """One session's screenshot size, coordinate mapping and image encoding."""

    screen: Size
    max_bytes: int = MAX_IMAGE_BYTES
    size: Size = field(init=False)
    scaler: CoordinateScaler = field(init=False)

    def __post_init__(self) -> None:
        self.size = screenshot_size(self.screen)
        self.scaler = CoordinateScaler(self.screen, self.size)
        self._png = ScreenshotEncoder(image_format="png")
        self._jpegs = [ScreenshotEncoder(image_format="jpeg", jpeg_quality=q)
                       for q in JPEG_QUALITIES]

    def encode(self, frame: Frame) -> EncodedImage:
        """``frame`` at the screenshot size, at most ``max_bytes`` long."""
        size = self.size if frame.size == self.screen else screenshot_size(frame.size)
        for encoder in (self._png, *self._jpegs):
            image = encoder.encode(frame, size)
            if len(image.data) <= self.max_bytes:
                return image
        raise ImageTooLarge(f"frame {frame_id(frame)} does not fit in {self.max_bytes} bytes")

    def to_screenshot(self, x: int, y: int) -> tuple[int, int]:
        return self.scaler.to_model(x, y)

    def box_to_screenshot(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return self.scaler.region_to_model(box)
