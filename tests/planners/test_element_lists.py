"""``--elements``: the screen's elements beside the screenshot, as the real ``anthropic`` and
``openai`` SDKs send them to a loopback provider — a numbered list, numbered marks on the
image for set-of-marks, nothing at all when off."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import anthropic
import numpy as np
import openai
from PIL import Image

from agent.perception.elements import Element
from agent.planners.anthropic import AnthropicPlanner
from agent.planners.base import Observation
from agent.planners.element_list import (
    HIDDEN_ELEMENT_LIST,
    MARK_FILL,
    element_list,
    estimate_tokens,
    listable,
)
from agent.planners.openai import OpenAIChatPlanner, OpenAIComputerUsePlanner
from agent.wire_actions import CoordinateScaler
from sandbox.base import Frame, Size
from tests.planners.conftest import make_frame
from tests.planners.loopback import (
    LoopbackLLM,
    chat_completion,
    claude_message,
    output_message,
    response,
    text_block,
)

SCREEN = Size(1920, 1080)  # shown at 1365x768 (Claude: 1024x576): coordinates are scaled
ELEMENTS = (
    Element("frame", "notes.txt - Mousepad", (0, 0, 1920, 1080), frozenset({"enabled"}), "",
            "a11y"),
    Element("push button", "Don't Save", (700, 600, 861, 641), frozenset({"enabled"}), "",
            "a11y"),
    Element("push button", "Cancel", (880, 600, 1001, 641),
            frozenset({"enabled", "focused"}), "", "a11y"),
    Element("check box", "Wrap lines", (40, 200, 180, 222), frozenset({"enabled", "checked"}),
            "", "a11y"),
    Element("push button", "Save", (1020, 600, 1141, 641), frozenset(), "", "a11y"),
    Element("filler", "", (0, 30, 1920, 1080), frozenset({"enabled"}), "", "a11y"),
)
LINE = re.compile(r'^(\d+) ([a-z ]+) "(.*)" (\d+),(\d+)(?: (\S+))?$')


def observed(frame: Frame, *, withheld: str = "", step: int = 0) -> Observation:
    return Observation(frame=frame, task="close the editor without saving", step_index=step,
                       withheld=withheld, elements=ELEMENTS)


def listed_lines(text: str) -> list[tuple[str, str, str, int, int, str]]:
    rows = []
    for line in text.splitlines()[1:]:
        found = LINE.match(line)
        assert found is not None, f"not a list line: {line!r}"
        number, role, name, x, y, states = found.groups()
        rows.append((number, role, name, int(x), int(y), states or ""))
    return rows


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"] for b in blocks if b.get("type") in {"text", "input_text"}]


def decoded(data: str) -> Image.Image:
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return image.convert("RGB")


def magenta_pixels(image: Image.Image) -> int:
    pixels = np.asarray(image, dtype=np.int16)
    near = np.abs(pixels - np.array(MARK_FILL, dtype=np.int16)).max(axis=2) < 50
    return int(near.sum())


def claude(client: anthropic.Anthropic, mode: str) -> AnthropicPlanner:
    return AnthropicPlanner(client, model="claude-sonnet-4-6", sandbox_size=SCREEN,
                            max_retries=0, elements=mode)  # type: ignore[arg-type]


def test_claude_gets_a_numbered_list_after_the_screenshot_with_exact_centres(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([text_block("done")]))
    planner = claude(anthropic_client, "text")
    planner.next_turn(observed(make_frame(SCREEN)), [])

    content = llm.requests[0].body["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "image", "text"]
    listed = content[2]["text"]
    assert listed.startswith("Elements on screen (accessibility tree):")
    rows = listed_lines(listed)
    assert [(r[1], r[2], r[5]) for r in rows] == [
        ("push button", "Don't Save", ""), ("push button", "Cancel", "focused"),
        ("check box", "Wrap lines", "checked"), ("push button", "Save", "disabled")]
    scaler = planner.conversation.scaler
    for (_n, _role, name, x, y, _states), shown in zip(rows, listable(ELEMENTS), strict=True):
        sx, sy = scaler.to_sandbox(x, y)  # where a click at the listed point lands
        x0, y0, x1, y1 = shown.box
        assert x0 <= sx < x1, f"{name}: x {sx} misses {shown.box}"
        assert y0 <= sy < y1, f"{name}: y {sy} misses {shown.box}"
    assert llm.requests[0].images() == [(1024, 576)], "one image, the screenshot"


def test_with_elements_off_nothing_about_elements_is_sent(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic,
        openai_client: openai.OpenAI) -> None:
    llm.queue_messages(claude_message([text_block("done")]))
    llm.queue_chat(chat_completion(content="done"))
    llm.queue_responses(response([output_message("done")]))
    frame = make_frame(SCREEN)
    claude(anthropic_client, "off").next_turn(observed(frame), [])
    OpenAIChatPlanner(openai_client, model="vlm", sandbox_size=SCREEN,
                      max_retries=0).next_turn(observed(frame), [])
    OpenAIComputerUsePlanner(openai_client, sandbox_size=SCREEN,
                             max_retries=0).next_turn(observed(frame), [])

    for request in llm.requests:
        assert b"Elements on screen" not in request.raw
        assert b"Don't Save" not in request.raw
    plain = decoded(llm.requests_to("/v1/chat/completions")[0].body["messages"][1]["content"][1]
                    ["image_url"]["url"])
    assert magenta_pixels(plain) == 0


def test_a_withheld_frame_sends_no_element_list_either(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([text_block("done")]))
    claude(anthropic_client, "text").next_turn(
        observed(make_frame(SCREEN), withheld="it may show a secret"), [])
    assert b"Elements on screen" not in llm.requests[0].raw
    assert b"Don't Save" not in llm.requests[0].raw


def test_an_old_element_list_leaves_with_its_screenshot(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([text_block("done")]), claude_message([text_block("ok")]))
    planner = AnthropicPlanner(anthropic_client, model="claude-sonnet-4-6", sandbox_size=SCREEN,
                               max_retries=0, elements="text", max_screenshots=1,
                               screenshot_chunk=1)
    planner.next_turn(observed(make_frame(SCREEN, shade=1)), [])
    planner.next_turn(observed(make_frame(SCREEN, shade=2), step=1), [])

    sent = [t for m in llm.requests[1].body["messages"] if m["role"] == "user"
            for t in texts(m["content"])]
    assert HIDDEN_ELEMENT_LIST in sent
    assert sum(t.startswith("Elements on screen") for t in sent) == 1


def test_an_openai_compatible_vlm_gets_numbered_marks_on_the_image_and_the_list(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(content="done"))
    planner = OpenAIChatPlanner(openai_client, model="qwen2.5-vl", sandbox_size=SCREEN,
                                max_retries=0, elements="marks")
    planner.next_turn(observed(make_frame(SCREEN)), [])

    user = llm.requests[0].body["messages"][1]["content"]
    assert [p["type"] for p in user] == ["text", "image_url", "text"]
    assert [r[2] for r in listed_lines(user[2]["text"])] == [
        "Don't Save", "Cancel", "Wrap lines", "Save"]
    image = decoded(user[1]["image_url"]["url"])
    assert image.size == (1365, 768)
    assert magenta_pixels(image) > 100, "the numbered marks are drawn on the screenshot"
    scaler = planner.conversation.scaler
    x0, y0, _x1, _y1 = scaler.region_to_model(ELEMENTS[1].box)
    above = image.crop((x0, max(0, y0 - 14), x0 + 12, y0))
    assert magenta_pixels(above) > 10, "mark 1 sits on the top-left corner of its element"


def test_the_responses_planner_gets_the_list_as_input_text_and_marks_on_the_screenshot(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(response([output_message("done")]))
    planner = OpenAIComputerUsePlanner(openai_client, sandbox_size=SCREEN, max_retries=0,
                                       elements="marks")
    planner.next_turn(observed(make_frame(SCREEN)), [])

    items = llm.requests[0].body["input"]
    assert items[-1]["role"] == "user"
    [listed] = texts(items[-1]["content"])
    assert listed.startswith("Elements on screen")
    image = next(p["image_url"] for p in items[0]["content"] if p["type"] == "input_image")
    assert magenta_pixels(decoded(image)) > 100


def test_the_list_is_small_beside_the_screenshot() -> None:
    text = element_list(listable(ELEMENTS), CoordinateScaler(SCREEN, Size(1365, 768)))
    assert estimate_tokens(text) < 100
    assert len(text.splitlines()) == 5
