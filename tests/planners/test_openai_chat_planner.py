"""OpenAIChatPlanner against the real openai SDK and a loopback Chat Completions server."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from agent.planners.base import ActionOutcome
from agent.planners.errors import PlannerUnavailable
from agent.planners.openai import OpenAIChatPlanner
from agent.planners.pricing import ModelPrice
from agent.planners.screenshots import HIDDEN_SCREENSHOT
from agent.wire_actions import CHAT_TOOLS
from sandbox.actions import Click, Key, TypeText
from sandbox.base import Size
from tests.planners.conftest import SECRET_KEY, make_frame, observe
from tests.planners.loopback import CHAT, LoopbackLLM, chat_completion, function_call


def planner_for(client: openai.OpenAI, size: Size = Size(1280, 800),
                **options: Any) -> OpenAIChatPlanner:
    options.setdefault("max_retries", 0)
    return OpenAIChatPlanner(client, model="qwen2.5-vl-7b", sandbox_size=size, **options)


def done(action: Any) -> ActionOutcome:
    return ActionOutcome(action=action, status="done")


def test_first_turn_sends_tools_and_a_scaled_screenshot(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(content="Opening the menu.", tool_calls=[
        function_call("click", {"x": 683, "y": 384}, id="call_1")]))
    planner = planner_for(openai_client, Size(1920, 1080))

    turn = planner.next_turn(observe(make_frame(Size(1920, 1080))), [])

    [request] = llm.requests_to(CHAT)
    body = request.body
    assert [t["function"]["name"] for t in body["tools"]] == \
        [t["function"]["name"] for t in CHAT_TOOLS]
    assert request.images() == [(1365, 768)]
    assert "1365x768" in body["messages"][0]["content"]
    url = body["messages"][1]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert turn.actions[0].action == Click(x=961, y=540)
    assert turn.actions[0].call_id == "call_1"
    assert turn.message == "Opening the menu."
    assert SECRET_KEY.encode() not in request.raw


def test_results_go_back_as_tool_messages_followed_by_the_screen(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(tool_calls=[
        function_call("type_text", {"text": "hello"}, id="call_t"),
        function_call("press_keys", {"keys": ["ctrl", "s"]}, id="call_s")]))
    llm.queue_chat(chat_completion(content="Saving is blocked, so I stop here."))
    planner = planner_for(openai_client)
    first = planner.next_turn(observe(make_frame()), [])
    assert [p.action for p in first.actions] == [TypeText(text="hello"),
                                                 Key(keys=["ctrl", "s"])]

    denied = ActionOutcome(action=first.actions[1].action, status="denied",
                           message="denied by policy: saving is not allowed")
    second = planner.next_turn(observe(make_frame(shade=1), 1),
                               [done(first.actions[0].action), denied])

    messages = llm.requests[1].body["messages"]
    assistant, tool_t, tool_s, screen = messages[2:6]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_t", "call_s"]
    assert (tool_t["role"], tool_t["tool_call_id"], tool_t["content"]) == ("tool", "call_t",
                                                                            "done")
    assert tool_s["tool_call_id"] == "call_s"
    assert "saving is not allowed" in tool_s["content"]
    assert "Do not repeat it" in tool_s["content"]
    assert screen["role"] == "user"
    assert screen["content"][1]["type"] == "image_url"
    assert second.finished == "done"


@pytest.mark.parametrize("content", [
    '<tool_call>\n{"name": "click", "arguments": {"x": 10, "y": 20}}\n</tool_call>',
    'I will click.\n```json\n{"action": "left_click", "coordinate": [10, 20]}\n```',
    '[{"function": {"name": "click", "arguments": "{\\"x\\": 10, \\"y\\": 20}"}}]',
])
def test_calls_written_as_json_in_the_text_are_understood(
        llm: LoopbackLLM, openai_client: openai.OpenAI, content: str) -> None:
    llm.queue_chat(chat_completion(content=content))
    llm.queue_chat(chat_completion(content="done"))
    planner = planner_for(openai_client)

    turn = planner.next_turn(observe(make_frame()), [])
    planner.next_turn(observe(make_frame(shade=1), 1), [done(turn.actions[0].action)])

    assert turn.actions[0].action == Click(x=10, y=20)
    messages = llm.requests[1].body["messages"]
    assert all(m["role"] != "tool" for m in messages)  # no tool_calls were made
    assert "Results of your actions:\n- " in messages[-1]["content"][0]["text"]


def test_finish_function_ends_the_session(llm: LoopbackLLM,
                                          openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(tool_calls=[
        function_call("finish", {"status": "failed", "summary": "No editor is installed."})]))

    turn = planner_for(openai_client).next_turn(observe(make_frame()), [])

    assert (turn.finished, turn.message, turn.actions) == ("failed", "No editor is installed.",
                                                           [])


def test_malformed_calls_become_errors_not_exceptions(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(tool_calls=[
        function_call("click", "{not json", id="c1"),
        function_call("click", {"x": 10}, id="c2"),
        function_call("teleport", {"x": 1, "y": 2}, id="c3"),
    ]))

    turn = planner_for(openai_client).next_turn(observe(make_frame()), [])

    errors = [p.error for p in turn.actions]
    assert all(p.action is None for p in turn.actions)
    assert "not valid JSON" in errors[0]
    assert "missing 'y'" in errors[1]
    assert "unknown action 'teleport'" in errors[2]


def test_normalized_coordinate_space(llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(tool_calls=[function_call("click", {"x": 500, "y": 500})]))
    planner = planner_for(openai_client, coordinate_space=Size(1000, 1000))

    turn = planner.next_turn(observe(make_frame()), [])

    assert turn.actions[0].action == Click(x=640, y=400)
    assert "1000x1000 grid" in llm.requests[0].body["messages"][0]["content"]


def test_without_tools_the_prompt_describes_the_json_format(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_chat(chat_completion(content='{"name": "type_text", "arguments": {"text": "hi"}}'))
    planner = planner_for(openai_client, use_tools=False, image_format="jpeg")

    turn = planner.next_turn(observe(make_frame()), [])

    body = llm.requests[0].body
    assert "tools" not in body
    assert "press_keys(keys)" in body["messages"][0]["content"]
    assert body["messages"][1]["content"][1]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,")
    assert turn.actions[0].action == TypeText(text="hi")


def test_old_screenshots_are_hidden_in_chunks(llm: LoopbackLLM,
                                              openai_client: openai.OpenAI) -> None:
    planner = planner_for(openai_client, max_screenshots=2, screenshot_chunk=3)
    outcomes: list[ActionOutcome] = []
    for step in range(7):
        llm.queue_chat(chat_completion(tool_calls=[function_call("click", {"x": 5, "y": 5})]))
        turn = planner.next_turn(observe(make_frame(shade=step), step), outcomes)
        outcomes = [done(turn.actions[0].action)]

    requests = llm.requests_to(CHAT)
    assert [len(r.images()) for r in requests] == [1, 2, 3, 4, 2, 3, 4]
    assert [repr(r.body).count(HIDDEN_SCREENSHOT) for r in requests] == [0, 0, 0, 0, 3, 3, 3]


def test_server_errors_are_retried_then_translated(llm: LoopbackLLM,
                                                   openai_client: openai.OpenAI) -> None:
    llm.queue_error(CHAT, 503, "model loading")
    llm.queue_chat(chat_completion(content="all done", prompt_tokens=100, cached_tokens=40))
    for _ in range(2):
        llm.queue_error(CHAT, 500, "boom")
    priced = planner_for(openai_client, max_retries=1,
                         pricing={"qwen2.5-vl-7b": ModelPrice(1.0, 2.0, 0.0, 0.5)})

    turn = priced.next_turn(observe(make_frame()), [])
    with pytest.raises(PlannerUnavailable):
        planner_for(openai_client, max_retries=1).next_turn(observe(make_frame()), [])

    assert turn.finished == "done"
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens) == (60, 40)
    assert turn.usage.cost_usd == pytest.approx((60 * 1.0 + 20 * 2.0 + 40 * 0.5) / 1e6)
    assert len(llm.requests_to(CHAT)) == 4
