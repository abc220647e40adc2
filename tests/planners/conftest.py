"""Fixtures for the planner tests: a loopback provider, real SDK clients, frames."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest
from PIL import Image, ImageDraw

from agent.planners.base import Observation
from sandbox.base import Frame, Size
from tests.planners.loopback import LoopbackLLM

SECRET_KEY = "sk-test-DO-NOT-LEAK-1234567890"

FrameFactory = Callable[..., Frame]


@pytest.fixture
def llm() -> Iterator[LoopbackLLM]:
    with LoopbackLLM() as server:
        yield server


@pytest.fixture
def anthropic_client(llm: LoopbackLLM) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=SECRET_KEY, base_url=llm.base_url, max_retries=0) as client:
        yield client


@pytest.fixture
def openai_client(llm: LoopbackLLM) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=SECRET_KEY, base_url=llm.openai_base_url, max_retries=0) as client:
        yield client


def make_frame(size: Size = Size(1280, 800), *, shade: int = 0,
               cursor: tuple[int, int] = (0, 0), title: str = "desktop") -> Frame:
    """A frame whose content differs with ``shade`` (so its hash differs too)."""
    image = Image.new("RGB", (size.width, size.height), (30 + shade % 200, 60, 90))
    ImageDraw.Draw(image).rectangle((10, 10, 60, 40), fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return Frame.from_png(buffer.getvalue(), size.width, size.height, cursor=cursor,
                          window_title=title)


def observe(frame: Frame, step: int = 0, task: str = "open the editor") -> Observation:
    return Observation(frame=frame, task=task, step_index=step)
