"""The VLM screen parser through the real openai SDK against a loopback server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator

import openai
import pytest

from agent.errors import ConfigError
from agent.perception.elements import (
    A11yUnavailable,
    AccessibilityTree,
    CombinedSource,
    Element,
    ElementQuery,
    TextAsElements,
    find_element,
)
from agent.perception.ocr import OcrScreenParser
from agent.perception.vlm import FallbackParser, VlmFailed, VlmScreenParser, model_size
from agent.runs import LazyPerception, parser_choice, plan_run
from agent.settings import Settings
from sandbox.base import Frame, Size
from sandbox.fake import FakeSandbox
from tests.planners.loopback import CHAT, LoopbackLLM, RecordedRequest, chat_completion


@pytest.fixture
def llm() -> Iterator[LoopbackLLM]:
    with LoopbackLLM() as server:
        yield server


def vlm(llm: LoopbackLLM, *, max_side: int = 1024, timeout_s: float = 30.0) -> VlmScreenParser:
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="local")
    return VlmScreenParser(client, "local-vlm", max_side=max_side, timeout_s=timeout_s)


def elements_reply(*items: dict[str, object]) -> dict[str, object]:
    return chat_completion(content=json.dumps({"elements": list(items)}))


def test_model_size_keeps_the_aspect_and_bounds_the_longer_side() -> None:
    assert model_size(Size(2048, 1280), 1024) == Size(1024, 640)
    assert model_size(Size(1280, 800), 1000) == Size(1000, 625)
    assert model_size(Size(800, 600), 1024) == Size(800, 600)


def test_boxes_in_the_model_image_map_back_to_screen_pixels_exactly(
        llm: LoopbackLLM, draw: Callable[..., Frame]) -> None:
    frame = draw([(200, 200, "Save", 24)], size=(2048, 1280))
    llm.queue_chat(elements_reply(
        {"role": "push button", "label": "Save", "box": [100, 100, 150, 120]},
        {"role": "check box", "label": "Wrap lines", "box": [0, 0, 1024, 640]}))
    found = vlm(llm, max_side=1024).elements(frame)
    assert found == [Element("push button", "Save", (200, 200, 300, 240), source="vlm"),
                     Element("check box", "Wrap lines", (0, 0, 2048, 1280), source="vlm")]
    request = llm.requests_to(CHAT)[0]
    assert request.images() == [(1024, 640)]  # downscaled before it was sent
    assert request.body["max_tokens"] == 2048
    assert "1024x640" in request.body["messages"][0]["content"][0]["text"]


def test_a_fractional_scale_maps_model_edges_to_the_covering_screen_pixels(
        llm: LoopbackLLM, draw: Callable[..., Frame]) -> None:
    frame = draw([], size=(1280, 800))  # sent at 1000x625: one model pixel is 1.28 pixels
    llm.queue_chat(chat_completion(content="```json\n" + json.dumps([
        {"role": "icon", "label": "", "box": [100, 100, 200, 200]},
        {"role": "entry", "label": "Name", "box": [1, 3, 7, 9]}]) + "\n```"))
    found = vlm(llm, max_side=1000).elements(frame)
    assert [e.box for e in found] == [(128, 128, 256, 256), (1, 3, 9, 12)]
    assert llm.requests_to(CHAT)[0].images() == [(1000, 625)]


def test_the_same_frame_is_asked_about_once(llm: LoopbackLLM,
                                            draw: Callable[..., Frame]) -> None:
    frame = draw([], size=(640, 400))
    llm.queue_chat(elements_reply({"role": "link", "label": "Home", "box": [1, 1, 50, 20]}))
    parser = vlm(llm)
    first = parser.elements(frame)
    assert parser.elements(frame) == first
    assert parser.parse(frame)[0].text == "Home"
    assert len(llm.requests_to(CHAT)) == 1


@pytest.mark.parametrize(("content", "says"), [
    ("Sure! There is a Save button.", "not JSON"),
    (json.dumps({"elements": [{"role": "push button", "box": [1, 2]}]}), "elements.0.box"),
    (json.dumps({"items": []}), "malformed at elements"),
    (json.dumps([{"role": "icon", "box": [10, 10, 5, 20]}]), "empty box"),
    (json.dumps([{"role": "icon", "box": [10, 10, 5000, 20]}]), "outside the 640x400 screen"),
])
def test_a_malformed_reply_is_a_clear_error(llm: LoopbackLLM, draw: Callable[..., Frame],
                                           content: str, says: str) -> None:
    llm.queue_chat(chat_completion(content=content))
    with pytest.raises(VlmFailed, match="VLM parser: local-vlm") as failure:
        vlm(llm).elements(draw([], size=(640, 400)))
    assert says in str(failure.value)


def test_a_slow_reply_is_a_clear_error_after_the_timeout(
        llm: LoopbackLLM, draw: Callable[..., Frame]) -> None:
    released = threading.Event()

    def stall(_request: RecordedRequest) -> dict[str, object]:
        released.wait(10)
        return elements_reply()

    llm.respond_with(CHAT, stall)
    try:
        with pytest.raises(VlmFailed, match=r"did not answer within 0\.5 s"):
            vlm(llm, timeout_s=0.5).elements(draw([], size=(640, 400)))
        assert len(llm.requests_to(CHAT)) == 1  # no retries against a slow server
    finally:
        released.set()


def test_a_failing_vlm_falls_back_to_ocr(llm: LoopbackLLM, parser: OcrScreenParser,
                                         draw: Callable[..., Frame]) -> None:
    frame = draw([(100, 100, "Discard changes", 28)], panels=[(60, 60, 600, 300)])
    llm.queue_chat(chat_completion(content="no idea"))
    llm.queue_chat(chat_completion(content="still no idea"))
    notes: list[str] = []
    fallback = FallbackParser(vlm(llm), parser, note=notes.append)
    words = [w.text for w in fallback.parse(frame)]
    assert "Discard" in words
    element = find_element(fallback.elements(frame), ElementQuery(role="text",
                                                                  name="Discard changes"))
    assert element.source == "ocr"
    assert fallback.fallbacks == 2
    assert "not JSON" in notes[0]
    assert notes[0].endswith("reading the screen with OCR instead")


# -- --parser on a run ----------------------------------------------------------------


def test_a_run_with_parser_vlm_reads_elements_from_the_server_and_ocr_when_it_fails(
        llm: LoopbackLLM, draw: Callable[..., Frame]) -> None:
    settings = Settings(parser="vlm", vlm_base_url=llm.openai_base_url, vlm_model="local-vlm")
    perception = LazyPerception(parser_choice(settings))
    frame = draw([(100, 100, "Keep both", 28)], panels=[(60, 60, 600, 300)])
    llm.queue_chat(elements_reply({"role": "push button", "label": "OK",
                                   "box": [10, 10, 60, 30]}))
    # 1280x800 is sent at 1024x640: 1.25 screen pixels per model pixel
    assert perception.elements(frame) == [Element("push button", "OK", (12, 12, 75, 38),
                                                  source="vlm")]
    other = draw([(100, 100, "Keep both", 28)], size=(1280, 801))
    llm.queue_chat(chat_completion(content="no"))
    assert [e.name for e in perception.elements(other)] == ["Keep both"]


@pytest.mark.parametrize(("changes", "says"), [
    ({"parser": "ocr2"}, "--parser 'ocr2': choose one of ocr, a11y, vlm, auto"),
    ({"parser": "vlm"}, "--parser vlm needs a model"),
])
def test_an_unusable_parser_choice_is_bad_input(changes: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        plan_run(Settings(**changes), task="look")  # type: ignore[arg-type]


def test_the_accessibility_tree_feeds_element_queries_and_auto_falls_back_to_ocr(
        parser: OcrScreenParser, draw: Callable[..., Frame]) -> None:
    frame = draw([(100, 100, "Discard changes", 28)], panels=[(60, 60, 600, 300)])
    with FakeSandbox() as box:
        tree = AccessibilityTree(box)
        auto = CombinedSource(tree, TextAsElements(parser))
        assert [e.source for e in auto.elements(frame)] == ["ocr"]  # no tree: OCR alone
        with pytest.raises(A11yUnavailable, match="the fake desktop has no tree"):
            tree.elements(frame)
        box.a11y_elements.append({"role": "check box", "name": "Wrap lines",
                                  "states": ["checked"], "value": "", "box": [5, 5, 25, 25]})
        other = draw([(100, 100, "Discard changes", 28)], size=(1280, 801))
        found = find_element(auto.elements(other), ElementQuery(role="check_box",
                                                               name="Wrap lines",
                                                               state="checked"))
        assert (found.source, found.center) == ("a11y", (15, 15))


def test_a_run_with_parser_auto_reads_the_sandbox_tree_first(
        draw: Callable[..., Frame]) -> None:
    perception = LazyPerception(parser_choice(Settings(parser="auto")))
    with FakeSandbox() as box:
        perception.attach(box)
        box.a11y_elements.append({"role": "push button", "name": "Save", "states": [],
                                  "value": "", "box": [10, 10, 50, 30]})
        found = perception.elements(draw([(100, 100, "Keep both", 28)],
                                         panels=[(60, 60, 600, 300)]))
    assert [(e.source, e.name) for e in found] == [("a11y", "Save"), ("ocr", "Keep both")]
