"""AnthropicPlanner against the real anthropic SDK and a loopback Messages server."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from agent.planners.anthropic import (
    AnthropicPlanner,
    estimate_image_tokens,
    screenshot_tokens,
)
from agent.planners.base import ActionOutcome
from agent.planners.errors import (
    PlannerAuthError,
    PlannerConfigError,
    PlannerRequestError,
    PlannerUnavailable,
)
from agent.planners.screenshots import HIDDEN_SCREENSHOT
from sandbox.actions import Click, CursorPosition, Drag, Key, Point, TypeText, Zoom
from sandbox.base import Size
from tests.planners.conftest import SECRET_KEY, make_frame, observe
from tests.planners.loopback import (
    MESSAGES,
    LoopbackLLM,
    claude_message,
    text_block,
    tool_use,
)

MODEL = "claude-haiku-4-5"


def planner_for(client: anthropic.Anthropic, size: Size = Size(1280, 800),
                **options: Any) -> AnthropicPlanner:
    options.setdefault("max_retries", 0)
    return AnthropicPlanner(client, model=MODEL, sandbox_size=size, **options)


def done(action: Any = None, frame: Any = None, **extra: Any) -> ActionOutcome:
    return ActionOutcome(action=action, status="done", frame=frame, **extra)


def cache_breakpoints(body: dict[str, Any]) -> int:
    text = repr(body)
    return text.count("'cache_control'")


def without_cache_control(value: Any) -> Any:
    if isinstance(value, list):
        return [without_cache_control(v) for v in value]
    if isinstance(value, dict):
        return {k: without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    return value


def test_first_turn_sends_a_scaled_screenshot_and_maps_coordinates_back(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([
        text_block("I will open the menu."),
        tool_use({"action": "left_click", "coordinate": [512, 288]}, id="toolu_a"),
    ]))
    planner = planner_for(anthropic_client, Size(1920, 1080))

    turn = planner.next_turn(observe(make_frame(Size(1920, 1080))), [])

    [request] = llm.requests_to(MESSAGES)
    tool = request.body["tools"][0]
    assert (tool["type"], tool["name"]) == ("computer_20250124", "computer")
    assert (tool["display_width_px"], tool["display_height_px"]) == (1024, 576)  # within XGA
    assert request.images() == [(1024, 576)]
    assert "computer-use-2025-01-24" in request.headers["anthropic-beta"]
    assert request.body["messages"][0]["content"][0]["text"] == "Task: open the editor"
    [proposed] = turn.actions
    assert proposed.call_id == "toolu_a"
    assert proposed.action == Click(x=960, y=540)
    assert planner.conversation.scaler.to_model(960, 540) == (512, 288)
    assert turn.message == "I will open the menu."


def test_the_reference_size_leaves_a_wxga_screen_as_it_is(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "left_click",
                                                 "coordinate": [1279, 0]})]))
    planner = planner_for(anthropic_client, Size(1280, 800), screenshot_size="recommended")
    frame = make_frame(Size(1280, 800))

    turn = planner.next_turn(observe(frame), [])

    [request] = llm.requests
    assert request.images() == [(1280, 800)]
    assert request.body["messages"][0]["content"][1]["source"]["data"] in \
        __import__("base64").b64encode(frame.png).decode()
    assert turn.actions[0].action == Click(x=1279, y=0)


def test_history_keeps_recent_screenshots_and_hides_old_ones_in_chunks(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    planner = planner_for(anthropic_client, max_screenshots=3, screenshot_chunk=2)
    outcomes: list[ActionOutcome] = []
    for step in range(8):
        llm.queue_messages(claude_message([tool_use({"action": "left_click",
                                                     "coordinate": [10 + step, 20]})]))
        turn = planner.next_turn(observe(make_frame(shade=step), step), outcomes)
        outcomes = [done(turn.actions[0].action)]

    bodies = [r.body for r in llm.requests_to(MESSAGES)]
    visible = [len(r.images()) for r in llm.requests_to(MESSAGES)]
    hidden = [repr(b["messages"]).count(HIDDEN_SCREENSHOT) for b in bodies]
    assert visible == [1, 2, 3, 4, 3, 4, 3, 4]
    assert hidden == [0, 0, 0, 0, 2, 2, 4, 4]
    # Between two trims the sent history only grows: the previous request is a prefix.
    for before, after in ((bodies[4], bodies[5]), (bodies[6], bodies[7])):
        old, new = (without_cache_control(b["messages"]) for b in (before, after))
        assert new[:len(old)] == old
    assert all(cache_breakpoints(b) <= 4 for b in bodies)


def test_cache_breakpoints_on_system_prompt_and_latest_user_turns(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    planner = planner_for(anthropic_client)
    outcomes: list[ActionOutcome] = []
    for step in range(3):
        llm.queue_messages(claude_message([tool_use({"action": "screenshot"})]))
        turn = planner.next_turn(observe(make_frame(shade=step), step), outcomes)
        outcomes = [done(turn.actions[0].action)]

    body = llm.requests[-1].body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    users = [m for m in body["messages"] if m["role"] == "user"]
    marked = ["cache_control" in m["content"][-1] for m in users]
    assert marked == [False, True, True]
    assert cache_breakpoints(body) == 3


def test_a_denied_action_comes_back_as_an_error_tool_result(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([
        tool_use({"action": "type", "text": "hello"}, id="toolu_type"),
        tool_use({"action": "key", "text": "ctrl+s"}, id="toolu_save"),
    ]))
    llm.queue_messages(claude_message([text_block("Saving is not allowed; stopping.")]))
    planner = planner_for(anthropic_client)
    first = planner.next_turn(observe(make_frame()), [])
    assert [p.action for p in first.actions] == [TypeText(text="hello"), Key(keys=["ctrl", "s"])]

    # The loop reports outcomes in order; it may leave call_id unset.
    outcomes = [done(first.actions[0].action),
                ActionOutcome(action=first.actions[1].action, status="denied",
                              message="denied by policy: saving files is not allowed")]
    second = planner.next_turn(observe(make_frame(shade=1), 1), outcomes)

    content = llm.requests[1].body["messages"][-1]["content"]
    typed, saved = content[0], content[1]
    assert typed["tool_use_id"] == "toolu_type"
    assert "is_error" not in typed
    assert saved["tool_use_id"] == "toolu_save"
    assert saved["is_error"] is True
    assert "saving files is not allowed" in saved["content"][0]["text"]
    assert content[-1]["type"] == "image"  # the screen follows the error result
    assert second.finished == "done"
    assert second.message == "Saving is not allowed; stopping."


def test_malformed_tool_input_is_proposed_as_an_error_and_answered(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([
        tool_use({"action": "left_click", "coordinate": [5000, 10]}, id="toolu_far"),
        tool_use({"action": "explode"}, id="toolu_bad"),
        tool_use({"action": "key", "text": "hyperkey"}, id="toolu_key"),
    ]))
    llm.queue_messages(claude_message([text_block("ok")]))
    planner = planner_for(anthropic_client)

    turn = planner.next_turn(observe(make_frame()), [])

    assert [p.action for p in turn.actions] == [None, None, None]
    assert "outside the 1024x640 screen" in turn.actions[0].error  # the model's XGA space
    assert "unknown action 'explode'" in turn.actions[1].error
    assert "unknown key 'hyperkey'" in turn.actions[2].error
    outcomes = [ActionOutcome(action=None, status="invalid", message=p.error, call_id=p.call_id)
                for p in turn.actions]
    planner.next_turn(observe(make_frame(shade=1), 1), outcomes)
    results = [b for b in llm.requests[1].body["messages"][-1]["content"]
               if b["type"] == "tool_result"]
    assert [r["tool_use_id"] for r in results] == ["toolu_far", "toolu_bad", "toolu_key"]
    assert all(r["is_error"] for r in results)
    assert "outside the 1024x640 screen" in results[0]["content"][0]["text"]


def test_actions_the_loop_skipped_are_answered_as_not_run(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "type", "text": "a"}, id="t1"),
                                       tool_use({"action": "type", "text": "b"}, id="t2")]))
    llm.queue_messages(claude_message([text_block("done")]))
    planner = planner_for(anthropic_client)
    planner.next_turn(observe(make_frame()), [])

    planner.next_turn(observe(make_frame(shade=1), 1), [])

    results = [b for b in llm.requests[1].body["messages"][-1]["content"]
               if b["type"] == "tool_result"]
    assert [(r["tool_use_id"], r["is_error"]) for r in results] == [("t1", True), ("t2", True)]
    assert "not run" in results[0]["content"][0]["text"]


def test_an_overloaded_answer_is_retried(llm: LoopbackLLM,
                                         anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_error(MESSAGES, 529, "Overloaded")
    llm.queue_error(MESSAGES, 429, "slow down")
    llm.queue_messages(claude_message([tool_use({"action": "screenshot"})]))
    planner = planner_for(anthropic_client, max_retries=3)

    turn = planner.next_turn(observe(make_frame()), [])

    attempts = [r.headers.get("x-stainless-retry-count") for r in llm.requests_to(MESSAGES)]
    assert attempts == ["0", "1", "2"]
    assert turn.actions[0].action is not None
    assert turn.actions[0].action.type == "screenshot"


def test_errors_after_the_retries_are_translated(llm: LoopbackLLM,
                                                 anthropic_client: anthropic.Anthropic) -> None:
    for _ in range(3):
        llm.queue_error(MESSAGES, 529, "Overloaded")
    planner = planner_for(anthropic_client, max_retries=2)

    with pytest.raises(PlannerUnavailable) as caught:
        planner.next_turn(observe(make_frame()), [])

    assert caught.value.status == 529
    assert len(llm.requests) == 3
    assert SECRET_KEY not in str(caught.value)


def test_refused_credentials_and_bad_requests_are_not_retried(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_error(MESSAGES, 401, "invalid x-api-key")
    llm.queue_error(MESSAGES, 400, "messages: too long")
    planner = planner_for(anthropic_client, max_retries=3)

    with pytest.raises(PlannerAuthError):
        planner.next_turn(observe(make_frame()), [])
    with pytest.raises(PlannerRequestError, match="too long"):
        planner.next_turn(observe(make_frame()), [])
    assert len(llm.requests) == 2


def test_end_turn_without_tools_finishes(llm: LoopbackLLM,
                                         anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([text_block("The file is saved.")]))
    llm.queue_messages(claude_message([text_block("FAILED: the editor is missing")]))

    turn = planner_for(anthropic_client).next_turn(observe(make_frame()), [])
    failed = planner_for(anthropic_client).next_turn(observe(make_frame()), [])

    assert (turn.finished, turn.message, turn.actions) == ("done", "The file is saved.", [])
    assert failed.finished == "failed"


def test_usage_and_cost_are_reported(llm: LoopbackLLM,
                                     anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "screenshot"})], input_tokens=1000,
                                      output_tokens=200, cache_read=5000, cache_write=2000))
    llm.queue_messages(claude_message([tool_use({"action": "screenshot"})]))
    priced = planner_for(anthropic_client)
    unpriced = AnthropicPlanner(anthropic_client, model="claude-unknown-9",
                                sandbox_size=Size(1280, 800), max_retries=0)

    usage = priced.next_turn(observe(make_frame()), []).usage
    unknown = unpriced.next_turn(observe(make_frame()), []).usage

    assert (usage.input_tokens, usage.output_tokens) == (1000, 200)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (5000, 2000)
    # haiku 4.5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per MTok
    assert usage.cost_usd == pytest.approx(0.005)
    assert unknown.cost_usd == 0
    assert "claude-unknown-9" in unpriced.cost_note
    assert priced.cost_note == ""


def test_zoom_tool_version_sends_its_beta_and_returns_the_zoomed_image(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "zoom", "region": [0, 0, 512, 288]},
                                                id="toolu_zoom")]))
    llm.queue_messages(claude_message([text_block("I can read it now.")]))
    planner = planner_for(anthropic_client, Size(1920, 1080), tool_version="computer_20251124")

    turn = planner.next_turn(observe(make_frame(Size(1920, 1080))), [])
    zoom = turn.actions[0].action
    assert zoom == Zoom(x0=0, y0=0, x1=960, y1=540)
    zoomed = make_frame(Size(960, 540), shade=7)
    planner.next_turn(observe(make_frame(Size(1920, 1080), shade=1), 1),  # a new screen
                      [done(zoom, zoomed)])

    first, second = llm.requests
    assert first.body["tools"][0]["enable_zoom"] is True
    assert "computer-use-2025-11-24" in first.headers["anthropic-beta"]
    result = second.body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result"
    assert result["content"][1]["type"] == "image"
    # the zoom image is scaled up to the screenshot budget; the screen follows it
    assert second.images()[-2:] == [(1024, 576), (1024, 576)]


def test_oldest_tool_version_drags_from_the_pointer(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([
        tool_use({"action": "left_click_drag", "coordinate": [300, 200]}),
        tool_use({"action": "triple_click", "coordinate": [1, 1]}),
    ]))
    planner = planner_for(anthropic_client, tool_version="computer_20241022")

    turn = planner.next_turn(observe(make_frame(cursor=(40, 50))), [])

    # 1280x800 is shown at 1024x640: the model's (300, 200) is the screen's (375, 250)
    assert turn.actions[0].action == Drag(path=[Point(x=40, y=50), Point(x=375, y=250)])
    assert "not part of computer_20241022" in turn.actions[1].error
    assert "computer-use-2024-10-22" in llm.requests[0].headers["anthropic-beta"]


def test_cursor_position_is_reported_in_model_pixels(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "cursor_position"})]))
    llm.queue_messages(claude_message([text_block("ok")]))
    planner = planner_for(anthropic_client, Size(1920, 1080))
    turn = planner.next_turn(observe(make_frame(Size(1920, 1080))), [])
    assert turn.actions[0].action == CursorPosition()

    planner.next_turn(observe(make_frame(Size(1920, 1080)), 1),
                      [done(CursorPosition(), output={"x": 960, "y": 540})])

    result = llm.requests[1].body["messages"][-1]["content"][0]
    assert result["content"][0]["text"] == "X=512,Y=288"


def test_thinking_is_requested_and_its_blocks_are_sent_back(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    thinking = {"type": "thinking", "thinking": "The menu is top left.", "signature": "sig=="}
    llm.queue_messages(claude_message([thinking, tool_use({"action": "screenshot"})]))
    llm.queue_messages(claude_message([text_block("done")]))
    planner = planner_for(anthropic_client, max_tokens=8000, thinking_budget=2048)

    turn = planner.next_turn(observe(make_frame()), [])
    planner.next_turn(observe(make_frame(), 1), [done(turn.actions[0].action)])

    first, second = llm.requests
    assert first.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assistant = second.body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == thinking


def test_adaptive_thinking(llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([text_block("done")]))
    planner_for(anthropic_client, thinking_budget="adaptive").next_turn(observe(make_frame()), [])
    assert llm.requests[0].body["thinking"] == {"type": "adaptive"}


def test_the_api_key_only_travels_in_the_auth_header(
        llm: LoopbackLLM, anthropic_client: anthropic.Anthropic) -> None:
    llm.queue_messages(claude_message([tool_use({"action": "screenshot"})]))
    turn = planner_for(anthropic_client).next_turn(observe(make_frame()), [])

    [request] = llm.requests
    carrying = [name for name, value in request.headers.items() if SECRET_KEY in value]
    assert carrying in (["authorization"], ["x-api-key"])
    assert SECRET_KEY.encode() not in request.raw
    assert SECRET_KEY not in repr(turn)


@pytest.mark.parametrize("options", [
    {"tool_version": "computer_19990101"},
    {"thinking_budget": 5000, "max_tokens": 4096},
    {"max_screenshots": 0},
])
def test_impossible_settings_are_refused(anthropic_client: anthropic.Anthropic,
                                         options: dict[str, Any]) -> None:
    with pytest.raises(PlannerConfigError):
        planner_for(anthropic_client, **options)


def test_image_token_estimate() -> None:
    assert estimate_image_tokens(Size(1280, 800)) == 1366
    assert screenshot_tokens(Size(1920, 1080)) == estimate_image_tokens(Size(1024, 576))
    assert screenshot_tokens(Size(1920, 1080), "recommended") == \
        estimate_image_tokens(Size(1365, 768))
    assert screenshot_tokens(Size(1920, 1080), "recommended") < \
        estimate_image_tokens(Size(1920, 1080)) / 1.9
