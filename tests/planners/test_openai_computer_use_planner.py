"""OpenAIComputerUsePlanner against the real openai SDK and a loopback Responses server."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from agent.planners.base import ActionOutcome, Observation
from agent.planners.openai import OpenAIComputerUsePlanner
from agent.planners.screenshots import (
    PLACEHOLDER_SIZE,
    placeholder_screenshot,
    unchanged_screen_text,
)
from sandbox.actions import Click, Drag, Key, Point, Scroll, TypeText
from sandbox.base import Size
from tests.planners.conftest import make_frame, observe
from tests.planners.loopback import (
    RESPONSES,
    LoopbackLLM,
    computer_call,
    output_message,
    reasoning_item,
    response,
    safety_check,
)

PLACEHOLDER = (PLACEHOLDER_SIZE.width, PLACEHOLDER_SIZE.height)


def planner_for(client: openai.OpenAI, size: Size = Size(1280, 800),
                **options: Any) -> OpenAIComputerUsePlanner:
    options.setdefault("max_retries", 0)
    return OpenAIComputerUsePlanner(client, sandbox_size=size, **options)


def done(action: Any) -> ActionOutcome:
    return ActionOutcome(action=action, status="done")


def test_first_request_declares_the_display_and_sends_the_screen(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(response([
        reasoning_item("Find the menu"),
        computer_call({"type": "click", "button": "left", "x": 683, "y": 384}, call_id="c1"),
    ], id="resp_1"))
    planner = planner_for(openai_client, Size(1920, 1080))

    turn = planner.next_turn(observe(make_frame(Size(1920, 1080))), [])

    body = llm.requests_to(RESPONSES)[0].body
    assert body["tools"] == [{"type": "computer_use_preview", "display_width": 1365,
                              "display_height": 768, "environment": "linux"}]
    assert body["truncation"] == "auto"
    assert "previous_response_id" not in body
    assert [part["type"] for part in body["input"][0]["content"]] == ["input_text",
                                                                      "input_image"]
    assert llm.requests[0].images() == [(1365, 768)]
    [proposed] = turn.actions
    assert (proposed.action, proposed.call_id, proposed.force_ask) == (Click(x=961, y=540),
                                                                       "c1", "")


def test_calls_are_answered_with_screenshots_on_the_chained_response(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(response([computer_call({"type": "type", "text": "hi"},
                                                call_id="c1")], id="resp_1"))
    llm.queue_responses(response([output_message("Typed it.")], id="resp_2"))
    planner = planner_for(openai_client)
    first = planner.next_turn(observe(make_frame()), [])

    second = planner.next_turn(observe(make_frame(shade=3), 1), [done(first.actions[0].action)])

    body = llm.requests[1].body
    assert body["previous_response_id"] == "resp_1"
    [output] = body["input"]
    assert output["type"] == "computer_call_output"
    assert output["call_id"] == "c1"
    assert output["output"]["type"] == "computer_screenshot"
    assert output["output"]["image_url"].startswith("data:image/png;base64,")
    assert "acknowledged_safety_checks" not in output
    assert (second.finished, second.message) == ("done", "Typed it.")


def test_safety_checks_force_an_ask_and_are_acknowledged_only_after_approval(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    risky = safety_check("The page asks you to send a password.", id="sc_1")
    also_risky = safety_check("Unexpected domain.", code="irrelevant_domain", id="sc_2")
    llm.queue_responses(
        response([computer_call({"type": "type", "text": "hunter2"}, call_id="c1",
                                safety_checks=[risky])], id="resp_1"),
        response([computer_call({"type": "keypress", "keys": ["ENTER"]}, call_id="c2",
                                safety_checks=[also_risky])], id="resp_2"),
        response([output_message("Stopped.")], id="resp_3"),
    )
    planner = planner_for(openai_client)

    first = planner.next_turn(observe(make_frame()), [])
    assert "send a password" in first.actions[0].force_ask
    refused = ActionOutcome(action=first.actions[0].action, status="denied",
                            message="denied by policy: a human did not approve it")
    second = planner.next_turn(observe(make_frame(shade=1), 1), [refused])
    assert "irrelevant_domain" in second.actions[0].force_ask
    planner.next_turn(observe(make_frame(shade=2), 2), [done(second.actions[0].action)])

    after_refusal, after_approval = llm.requests[1].body, llm.requests[2].body
    output, note = after_refusal["input"]
    assert output["call_id"] == "c1"
    assert "acknowledged_safety_checks" not in output
    assert "a human did not approve it" in note["content"][0]["text"]
    [approved] = after_approval["input"]
    assert approved["call_id"] == "c2"
    assert approved["acknowledged_safety_checks"] == [also_risky]


def test_every_computer_action_translates(llm: LoopbackLLM,
                                         openai_client: openai.OpenAI) -> None:
    llm.queue_responses(response([
        computer_call({"type": "double_click", "x": 10, "y": 20}, call_id="a"),
        computer_call({"type": "drag", "path": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]},
                      call_id="b"),
        computer_call({"type": "keypress", "keys": ["CTRL", "ALT", "T"]}, call_id="c"),
        computer_call({"type": "scroll", "x": 100, "y": 200, "scroll_x": 0, "scroll_y": -300},
                      call_id="d"),
        computer_call({"type": "click", "button": "wheel", "x": 5, "y": 6}, call_id="e"),
        computer_call({"type": "wait"}, call_id="f"),
    ]))

    turn = planner_for(openai_client).next_turn(observe(make_frame()), [])

    actions = [p.action for p in turn.actions]
    assert actions[:5] == [
        Click(x=10, y=20, count=2),
        Drag(path=[Point(x=1, y=2), Point(x=30, y=40)]),
        Key(keys=["ctrl", "alt", "t"]),
        Scroll(x=100, y=200, dy=-3),
        Click(x=5, y=6, button="middle"),
    ]
    assert actions[5] is not None
    assert actions[5].type == "wait"


def test_batched_actions_share_one_call_output(llm: LoopbackLLM,
                                               openai_client: openai.OpenAI) -> None:
    batched = computer_call({"type": "screenshot"}, call_id="batch")
    batched.pop("action")
    batched["actions"] = [{"type": "type", "text": "a"}, {"type": "keypress", "keys": ["ENTER"]}]
    llm.queue_responses(response([batched]), response([output_message("ok")]))
    planner = planner_for(openai_client)

    turn = planner.next_turn(observe(make_frame()), [])
    planner.next_turn(observe(make_frame(shade=1), 1), [done(p.action) for p in turn.actions])

    assert [p.action for p in turn.actions] == [TypeText(text="a"), Key(keys=["enter"])]
    assert [i["call_id"] for i in llm.requests[1].body["input"]] == ["batch"]


def test_without_chaining_the_whole_history_is_sent(llm: LoopbackLLM,
                                                    openai_client: openai.OpenAI) -> None:
    first_output = [reasoning_item(), computer_call({"type": "screenshot"}, call_id="c1")]
    llm.queue_responses(response(first_output, id="resp_1"),
                        response([output_message("done")], id="resp_2"))
    planner = planner_for(openai_client, chain=False)

    turn = planner.next_turn(observe(make_frame()), [])
    planner.next_turn(observe(make_frame(shade=1), 1), [done(turn.actions[0].action)])

    body = llm.requests[1].body
    assert "previous_response_id" not in body
    assert body["store"] is False
    kinds = [item.get("type", item.get("role")) for item in body["input"]]
    assert kinds == ["user", "reasoning", "computer_call", "computer_call_output"]


def test_usage_is_priced_for_the_computer_use_model(llm: LoopbackLLM,
                                                    openai_client: openai.OpenAI) -> None:
    llm.queue_responses(response([output_message("done")], input_tokens=1000,
                                 output_tokens=100, cached_tokens=400))

    usage = planner_for(openai_client).next_turn(observe(make_frame()), []).usage

    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (600, 400, 100)
    assert usage.cost_usd == pytest.approx((600 * 3.0 + 400 * 1.5 + 100 * 12.0) / 1e6)


def test_an_unchanged_screen_is_answered_with_a_placeholder_and_a_line_of_text(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(
        response([computer_call({"type": "move", "x": 5, "y": 5}, call_id="c1")], id="r1"),
        response([computer_call({"type": "type", "text": "hi"}, call_id="c2")], id="r2"),
        response([output_message("done")], id="r3"),
    )
    planner = planner_for(openai_client)
    first = planner.next_turn(observe(make_frame()), [])
    # the pointer moved over nothing: the same screen comes back
    second = planner.next_turn(observe(make_frame(), 1), [done(first.actions[0].action)])
    planner.next_turn(observe(make_frame(shade=9), 2), [done(second.actions[0].action)])

    screens = [request.images() for request in llm.requests]
    assert screens == [[(1280, 800)], [PLACEHOLDER], [(1280, 800)]]
    output, note = llm.requests[1].body["input"]
    assert (output["type"], output["call_id"]) == ("computer_call_output", "c1")
    assert output["output"]["image_url"] == placeholder_screenshot().data_url
    assert note["role"] == "user"
    assert unchanged_screen_text(0) in note["content"][0]["text"]
    assert "placeholder" in note["content"][0]["text"]
    [changed] = llm.requests[2].body["input"]  # a changed screen goes as itself, alone
    assert changed["output"]["image_url"].startswith("data:image/png;base64,")


def test_a_withheld_screen_never_leaves_and_the_model_is_told_why(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(
        response([computer_call({"type": "type", "text": "hunter2"}, call_id="c1")], id="r1"),
        response([output_message("ok")], id="r2"),
        response([output_message("still ok")], id="r3"),
    )
    planner = planner_for(openai_client)
    first = planner.next_turn(observe(make_frame()), [])
    secret = Observation(make_frame(shade=4), "open the editor", 1,
                         withheld="it could not be checked for secrets")
    planner.next_turn(secret, [done(first.actions[0].action)])
    planner.next_turn(Observation(make_frame(shade=5), "open the editor", 2,
                                  withheld="it could not be checked for secrets"), [])

    after_call, continuing = llm.requests[1], llm.requests[2]
    assert after_call.images() == [PLACEHOLDER]
    assert "[screenshot withheld: it could not be checked" in after_call.raw.decode()
    assert continuing.images() == []  # a user turn needs no image at all
    assert [part["type"] for part in continuing.body["input"][0]["content"]] == [
        "input_text", "input_text"]


def test_an_unchanged_screen_after_a_refused_call_shares_one_note(
        llm: LoopbackLLM, openai_client: openai.OpenAI) -> None:
    llm.queue_responses(
        response([computer_call({"type": "keypress", "keys": ["CTRL", "Q"]}, call_id="c1")]),
        response([output_message("fine")]),
    )
    planner = planner_for(openai_client)
    first = planner.next_turn(observe(make_frame()), [])
    refused = ActionOutcome(action=first.actions[0].action, status="denied",
                            message="denied by policy: quitting is not allowed")
    planner.next_turn(observe(make_frame(), 1), [refused])

    output, note = llm.requests[1].body["input"]
    assert output["output"]["image_url"] == placeholder_screenshot().data_url
    texts = [part["text"] for part in note["content"]]
    assert unchanged_screen_text(0) in texts[0]
    assert "quitting is not allowed" in texts[1]
