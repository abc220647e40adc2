"""Screenshots as models see them: scaled to a recommended size, encoded, trimmed.

Vision models read coordinates more reliably, and cost less, on screenshots
near XGA/WXGA size.  :func:`recommended_model_size` picks that size for a
sandbox screen (same aspect ratio, never upscaled); a
:class:`~agent.wire_actions.CoordinateScaler` maps the model's points back.

A long session would resend every old screenshot on every turn.  Planners
keep only the most recent ones, and hide older ones in *chunks*
(:func:`images_to_hide`) so that the start of the prompt stays byte-identical
for several turns in a row and the provider's prompt cache keeps matching.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from sandbox.base import Frame, Size

XGA = Size(1024, 768)
WXGA = Size(1280, 800)
FWXGA = Size(1366, 768)
RECOMMENDED_TARGETS: tuple[Size, ...] = (XGA, WXGA, FWXGA)
MAX_IMAGE_PIXELS = 1_150_000

ImageFormat = Literal["png", "jpeg"]


def fit_within(size: Size, box: Size, *, upscale: bool = False) -> Size:
    """``size`` scaled to fit ``box`` and :data:`MAX_IMAGE_PIXELS`, keeping its aspect ratio."""
    scale = min(box.width / size.width, box.height / size.height,
                math.sqrt(MAX_IMAGE_PIXELS / (size.width * size.height)))
    if not upscale:
        scale = min(scale, 1.0)
    return Size(max(1, math.floor(size.width * scale + 1e-9)),
                max(1, math.floor(size.height * scale + 1e-9)))


def recommended_model_size(sandbox: Size) -> Size:
    """The screenshot size to show a model: the sandbox screen fitted into the
    recommended target (XGA, WXGA or FWXGA) whose aspect ratio is closest."""
    aspect = sandbox.width / sandbox.height
    target = min(RECOMMENDED_TARGETS, key=lambda t: abs(t.width / t.height - aspect))
    return fit_within(sandbox, target)


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """Image bytes ready for a request."""

    data: bytes
    media_type: str
    size: Size

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64}"


class ScreenshotEncoder:
    """Scales and encodes frames, remembering the last few (a frame is often sent twice)."""

    def __init__(self, *, image_format: ImageFormat = "png", jpeg_quality: int = 85,
                 remember: int = 4) -> None:
        self.image_format: ImageFormat = image_format
        self.jpeg_quality = jpeg_quality
        self._remember = remember
        self._cache: OrderedDict[tuple[str, Size], EncodedImage] = OrderedDict()

    def encode(self, frame: Frame, size: Size) -> EncodedImage:
        """``frame`` at ``size`` pixels in this encoder's format."""
        key = (frame.sha256, size)
        if key not in self._cache:
            self._cache[key] = self._encode(frame, size)
            while len(self._cache) > self._remember:
                self._cache.popitem(last=False)
        return self._cache[key]

    def _encode(self, frame: Frame, size: Size) -> EncodedImage:
        if size == frame.size and self.image_format == "png":
            return EncodedImage(frame.png, "image/png", size)
        with Image.open(io.BytesIO(frame.png)) as image:
            scaled = image.convert("RGB")
            if size != frame.size:
                scaled = scaled.resize((size.width, size.height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if self.image_format == "jpeg":
            scaled.save(out, format="JPEG", quality=self.jpeg_quality)
            return EncodedImage(out.getvalue(), "image/jpeg", size)
        scaled.save(out, format="PNG")
        return EncodedImage(out.getvalue(), "image/png", size)


def images_to_hide(total: int, keep: int, chunk: int) -> int:
    """How many of the oldest images to replace by a placeholder.

    At least ``keep`` images stay; the hidden count only grows in steps of
    ``chunk``, so the prompt prefix changes once every ``chunk`` images
    rather than on every turn.
    """
    excess = total - keep
    if excess <= 0:
        return 0
    return excess - excess % max(1, chunk)


HIDDEN_SCREENSHOT = "[older screenshot removed to save context]"

ScreenshotSize = Literal["recommended", "xga"]
"""``xga``: the sandbox screen fitted into XGA (1024x768), the size Anthropic's
computer-use documentation recommends, and Claude's default here (a 1280x800 screen
costs 874 tokens a screenshot instead of 1366); ``recommended``: fitted into XGA, WXGA
or FWXGA, whichever has the closest aspect ratio (what Anthropic's reference
implementation does: a 1280x800 screen is sent as it is)."""


def model_size(sandbox: Size, choice: ScreenshotSize) -> Size:
    """The size screenshots are shown to a model at, for a ``sandbox`` screen."""
    return fit_within(sandbox, XGA) if choice == "xga" else recommended_model_size(sandbox)


def unchanged_screen_text(step: int) -> str:
    """What replaces a screenshot identical to the last one sent (at ``step``)."""
    return f"The screen is unchanged since step {step} (same screenshot as then)."


class ScreenMemory:
    """Remembers the last screen a planner sent, to send an identical one as text only."""

    def __init__(self) -> None:
        self._last: tuple[str, int] | None = None

    def unchanged_since(self, frame: Frame, step: int) -> int | None:
        """The step whose screenshot equals ``frame``, or ``None`` (and remember this one)."""
        if self._last is not None and self._last[0] == frame.sha256:
            return self._last[1]
        self._last = (frame.sha256, step)
        return None

    def text_instead(self, frame: Frame, step: int, *, withheld: str,
                     skip_unchanged: bool) -> str | None:
        """What a planner sends instead of ``frame``: why it is withheld (it may show a
        secret), or that it did not change since the last one sent; ``None``: the image."""
        if withheld:
            return f"[screenshot withheld: {withheld}]"
        since = self.unchanged_since(frame, step)
        return unchanged_screen_text(since) if skip_unchanged and since is not None else None


PLACEHOLDER_SIZE = Size(8, 8)


@functools.cache
def placeholder_screenshot() -> EncodedImage:
    """A tiny grey PNG (77 bytes): the image an API that insists on one gets where
    the screen goes as a line of text (OpenAI's ``computer_call_output``)."""
    out = io.BytesIO()
    Image.new("RGB", (PLACEHOLDER_SIZE.width, PLACEHOLDER_SIZE.height),
              (128, 128, 128)).save(out, format="PNG")
    return EncodedImage(out.getvalue(), "image/png", PLACEHOLDER_SIZE)
