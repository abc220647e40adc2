"""What screenshots cost over a 30-step Claude session, billed from what the server received.

The real ``anthropic`` SDK talks to the loopback server; the test bills every
request the server received the way the prompt cache works (reads 0.1x,
writes 1.25x; see ``agent.planners.bench.bill_requests``).  The baseline is
the demo-like accounting: Anthropic's reference loop with prompt caching keeps
every screenshot, one per step, at its own size (WXGA for this 1280x800 screen).
deskhand's defaults send XGA screenshots, keep the three most recent and hide
older ones seven at a time, and send an unchanged screen as a line of text.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from agent.planners.anthropic import AnthropicPlanner
from agent.planners.base import ActionOutcome, Observation
from agent.planners.bench import (
    bill_requests,
    least_billed_wxga,
    request_bodies,
    session_with_still_screens,
)
from agent.planners.screenshots import unchanged_screen_text
from sandbox.actions import Click
from sandbox.base import Size
from tests.planners.loopback import MESSAGES, LoopbackLLM, claude_message, tool_use

STEPS = 30
SCREEN = Size(1280, 800)


def run_session(client: anthropic.Anthropic, llm: LoopbackLLM, unchanged_every: int,
                **options: Any) -> list[dict[str, Any]]:
    """30 turns through the planner; the request bodies the server received."""
    start = len(llm.requests_to(MESSAGES))
    planner = AnthropicPlanner(client, model="claude-sonnet-4-6", sandbox_size=SCREEN,
                               max_retries=0, **options)
    outcomes: list[ActionOutcome] = []
    for step, frame in enumerate(session_with_still_screens(STEPS, unchanged_every)):
        llm.queue_messages(claude_message([tool_use({"action": "left_click",
                                                     "coordinate": [40 + step, 50]})]))
        turn = planner.next_turn(Observation(frame, "sort the files", step), outcomes)
        outcomes = [ActionOutcome(action=Click(x=40, y=50), status="done")
                    for _ in turn.actions]
    return [request.body for request in llm.requests_to(MESSAGES)[start:]]


def images_in(body: dict[str, Any]) -> list[str]:
    """The base64 payloads of every image in a request, in order."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "image":
                found.append(value["source"]["data"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(body["messages"])
    return found


@pytest.mark.parametrize("unchanged_every", [0, 4])
def test_screenshots_bill_at_most_half_of_the_demo_like_accounting(
        anthropic_client: anthropic.Anthropic, llm: LoopbackLLM, unchanged_every: int) -> None:
    demo = bill_requests(run_session(anthropic_client, llm, unchanged_every,
                                     screenshot_size="recommended", max_screenshots=10**6,
                                     screenshot_chunk=1, skip_unchanged=False))
    ours_bodies = run_session(anthropic_client, llm, unchanged_every)  # the defaults
    ours = bill_requests(ours_bodies)
    print(json.dumps({"unchanged_every": unchanged_every, "demo_billed": round(demo.billed, 2),
                      "ours_billed": round(ours.billed, 2), "ours_images": ours.images_sent,
                      "demo_images": demo.images_sent, "ours_read": round(ours.read, 2),
                      "ours_written": round(ours.written, 2)}))
    assert demo.billed == pytest.approx(81.0)  # 30 written at 1.25x, then read at 0.1x
    assert ours.billed <= 0.5 * demo.billed
    distinct_screens: list[str] = []
    for body in ours_bodies:
        for image in images_in(body):
            if image not in distinct_screens:
                distinct_screens.append(image)
        sent = images_in(body)
        assert all(screen in sent for screen in distinct_screens[-3:]), \
            "one of the three most recent changed screens was hidden"


def test_an_unchanged_screen_is_sent_as_a_line_of_text(
        anthropic_client: anthropic.Anthropic, llm: LoopbackLLM) -> None:
    bodies = run_session(anthropic_client, llm, unchanged_every=4)
    last = json.dumps(bodies[-1])
    assert unchanged_screen_text(2) in json.dumps(bodies[3])
    assert unchanged_screen_text(26) in last
    assert len(images_in(bodies[3])) == len(images_in(bodies[2]))


def test_screenshots_are_xga_by_default_and_map_coordinates_back_exactly(
        anthropic_client: anthropic.Anthropic, llm: LoopbackLLM) -> None:
    planner = AnthropicPlanner(anthropic_client, model="claude-sonnet-4-6", sandbox_size=SCREEN,
                               max_retries=0)
    llm.queue_messages(claude_message([tool_use({"action": "left_click",
                                                 "coordinate": [1023, 639]})]))
    frame = session_with_still_screens(1, 0)[0]
    turn = planner.next_turn(Observation(frame, "click the corner", 0), [])
    tool = llm.requests_to(MESSAGES)[-1].body["tools"][0]
    assert (tool["display_width_px"], tool["display_height_px"]) == (1024, 640)
    assert llm.requests_to(MESSAGES)[-1].images() == [(1024, 640)]
    assert turn.actions[0].action == Click(x=1279, y=799)


@pytest.mark.parametrize("unchanged_every", [0, 4])
def test_the_wxga_floor_lies_under_every_wxga_strategy(unchanged_every: int) -> None:
    frames = session_with_still_screens(STEPS, unchanged_every)
    floor = least_billed_wxga(frames)
    for chunk in (1, 4, 7, 10):
        bodies = request_bodies(frames, screenshot_size="recommended", screenshot_chunk=chunk)
        assert bill_requests(bodies).billed >= floor


def test_at_wxga_no_trimming_could_halve_the_demo_like_bill() -> None:
    # why the default is XGA: with every screen new, writing each once and reading the two
    # before it already costs more than half the demo's 81 image-equivalents
    assert least_billed_wxga(session_with_still_screens(STEPS, 0)) > 0.5 * 81.0
