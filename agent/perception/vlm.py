"""A screen parser that asks a local vision-language model what is on screen.

Any OpenAI-compatible server will do (vLLM, Ollama, llama.cpp's server); the
client is injected, so the base URL and model are the caller's::

    client = openai.OpenAI(base_url="http://127.0.0.1:11434/v1", api_key="local")
    parser = VlmScreenParser(client, model="qwen2.5vl:7b")
    for element in parser.elements(frame):      # role, label, box in screen pixels
        ...
    words = parser.parse(frame)                 # the ScreenParser seam: labels as text

The frame is downscaled to at most ``max_side`` pixels on its longer side
before it is sent (bounded image tokens); the model answers in that image's
pixels and :class:`~agent.wire_actions.CoordinateScaler` maps each box back
to the screen exactly (a model pixel covers the screen pixels under it).
Replies are bounded by ``max_tokens`` and ``timeout_s`` (no retries: a slow
server stays slow), and cached by frame hash.  A malformed or slow reply
raises :class:`VlmFailed`; :class:`FallbackParser` then reads with OCR.

The reply is validated with pydantic rather than picked apart by hand.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.perception.elements import Element
from agent.perception.errors import PerceptionError
from agent.perception.screen import ScreenParser, TextElement
from agent.wire_actions import CoordinateScaler, WireError
from sandbox.base import Frame, Size

if TYPE_CHECKING:
    import openai

DEFAULT_MAX_SIDE = 1024
DEFAULT_MAX_TOKENS = 2048
DEFAULT_TIMEOUT_S = 30.0

PROMPT = (
    "List the interactive elements and text labels visible in this screenshot of a "
    "Linux desktop. The image is {width}x{height} pixels. Answer with JSON only, shaped "
    '{{"elements": [{{"role": "push button", "label": "Save", '
    '"box": [x0, y0, x1, y1]}}]}}, where box is in this image\'s pixels '
    "(x0,y0 top-left, x1,y1 bottom-right) and role is an accessibility role such as "
    'push button, check box, text, menu item, entry, icon, link; add "states" such as '
    '["checked", "focused", "disabled"] where they show. At most {limit} elements.'
)
MAX_ELEMENTS = 200


class VlmFailed(PerceptionError):
    """The model's server failed, was too slow, or answered something unusable."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str = Field(min_length=1)
    label: str = ""
    box: tuple[float, float, float, float]
    states: list[str] = []


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    elements: list[_Item]


def model_size(screen: Size, max_side: int) -> Size:
    """The size the frame is sent at: aspect kept, longer side at most ``max_side``."""
    longest = max(screen.width, screen.height)
    if longest <= max_side:
        return screen
    scale = max_side / longest
    return Size(max(1, round(screen.width * scale)), max(1, round(screen.height * scale)))


class VlmScreenParser:
    """Elements from a vision-language model; both a ScreenParser and an ElementSource."""

    def __init__(self, client: openai.OpenAI, model: str, *,
                 max_side: int = DEFAULT_MAX_SIDE, max_tokens: int = DEFAULT_MAX_TOKENS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, cache_size: int = 16) -> None:
        if not model:
            raise ValueError("the VLM parser needs a model name")
        self.client = client
        self.model = model
        self.max_side = max_side
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.requests = 0
        self._cache: OrderedDict[str, tuple[Element, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def elements(self, frame: Frame) -> list[Element]:
        with self._lock:
            cached = self._cache.get(frame.sha256)
            if cached is not None:
                self._cache.move_to_end(frame.sha256)
                return list(cached)
            found = tuple(self._ask(frame))
            self._cache[frame.sha256] = found
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return list(found)

    def parse(self, frame: Frame) -> list[TextElement]:
        """Labelled elements as text (confidence 1: the model gives none)."""
        return [TextElement(e.name, *e.box, confidence=1.0)
                for e in self.elements(frame) if e.name.strip()]

    def _ask(self, frame: Frame) -> list[Element]:
        size = model_size(frame.size, self.max_side)
        content = self._request(_png_data_url(frame, size), size)
        scaler = CoordinateScaler(sandbox=frame.size, model=size)
        return [_element(item, scaler, index, self.model) for index, item in
                enumerate(_parse_reply(content, self.model)[:MAX_ELEMENTS], start=1)]

    def _request(self, image_url: str, size: Size) -> str:
        import openai

        prompt = PROMPT.format(width=size.width, height=size.height, limit=MAX_ELEMENTS)
        self.requests += 1
        try:
            reply = self.client.with_options(timeout=self.timeout_s, max_retries=0) \
                .chat.completions.create(
                    model=self.model, max_tokens=self.max_tokens, temperature=0,
                    messages=[{"role": "user", "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": image_url}}]}])
        except openai.APITimeoutError:
            raise VlmFailed(f"VLM parser: {self.model} did not answer within "
                            f"{self.timeout_s:g} s") from None
        except openai.APIError as exc:
            raise VlmFailed(f"VLM parser: {self.model} failed: {exc}") from None
        if not reply.choices or not reply.choices[0].message.content:
            raise VlmFailed(f"VLM parser: {self.model} answered with no text")
        return reply.choices[0].message.content


def _png_data_url(frame: Frame, size: Size) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(frame.png)) as opened:
            opened.load()
            image: Image.Image = opened
            if (image.width, image.height) != (size.width, size.height):
                image = image.convert("RGB").resize((size.width, size.height),
                                                    Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, format="PNG")
    except (UnidentifiedImageError, OSError) as exc:
        raise VlmFailed(f"VLM parser: the frame is not a readable image: {exc}") from None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _parse_reply(content: str, model: str) -> list[_Item]:
    """The reply's elements; a bare list or fenced JSON is accepted too."""
    fenced = _FENCED.search(content)
    text = fenced.group(1) if fenced else content
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VlmFailed(f"VLM parser: {model}'s reply is not JSON ({exc}): "
                        f"{content[:80]!r}") from None
    if isinstance(data, list):
        data = {"elements": data}
    try:
        return _Reply.model_validate(data).elements
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise VlmFailed(f"VLM parser: {model}'s reply is malformed at {where}: "
                        f"{first['msg']}") from None


def _element(item: _Item, scaler: CoordinateScaler, index: int, model: str) -> Element:
    x0, y0, x1, y1 = item.box
    if x1 <= x0 or y1 <= y0:
        raise VlmFailed(f"VLM parser: {model}'s element {index} ({item.role} "
                        f"{item.label!r}) has an empty box {list(item.box)}")
    try:
        box = scaler.region_to_sandbox(item.box)
    except WireError as exc:
        raise VlmFailed(f"VLM parser: {model}'s element {index} ({item.role} {item.label!r}): "
                        f"{exc}") from None
    return Element(role=item.role, name=item.label, box=box,
                   states=frozenset(s.casefold() for s in item.states), source="vlm")


class FallbackParser:
    """A parser that falls back to another (OCR) when the first fails.

    Each fallback is said through ``note`` and counted in :attr:`fallbacks`.
    Serves both seams: ``parse`` (words) and ``elements``.
    """

    def __init__(self, primary: VlmScreenParser, fallback: ScreenParser, *,
                 note: Callable[[str], None] = lambda _text: None) -> None:
        self.primary = primary
        self.fallback = fallback
        self.note = note
        self.fallbacks = 0
        self.last_error: PerceptionError | None = None

    def parse(self, frame: Frame) -> list[TextElement]:
        try:
            return self.primary.parse(frame)
        except PerceptionError as exc:
            self._fell_back(exc)
            return self.fallback.parse(frame)

    def elements(self, frame: Frame) -> list[Element]:
        from agent.perception.elements import TextAsElements

        try:
            return self.primary.elements(frame)
        except PerceptionError as exc:
            self._fell_back(exc)
            return TextAsElements(self.fallback).elements(frame)

    def _fell_back(self, exc: PerceptionError) -> None:
        self.fallbacks += 1
        self.last_error = exc
        self.note(f"{exc}; reading the screen with OCR instead")
