"""Element steps in scripts, grounded by the VLM parser (real openai SDK, loopback server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from agent.errors import ScriptError
from agent.perception.vlm import VlmScreenParser
from agent.planners.base import Observation, Turn
from agent.planners.script import ScriptPlanner, load_script
from sandbox.actions import Click
from sandbox.base import Frame
from tests.planners.loopback import LoopbackLLM, chat_completion

SAVE: dict[str, object] = {"role": "push button", "label": "Save", "box": [100, 50, 140, 70]}
WRAP_OFF: dict[str, object] = {"role": "check box", "label": "Wrap lines", "box": [10, 10, 30, 20]}
WRAP_ON: dict[str, object] = {**WRAP_OFF, "states": ["checked", "focused"]}


@pytest.fixture
def llm() -> Iterator[LoopbackLLM]:
    with LoopbackLLM() as server:
        yield server


def planner_for(tmp_path: Path, llm: LoopbackLLM, steps: str) -> ScriptPlanner:
    path = tmp_path / "script.yaml"
    path.write_text("task: t\nsteps:\n" + steps, encoding="utf-8")
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="local")
    return ScriptPlanner(load_script(path), elements=VlmScreenParser(client, "local-vlm"))


def shown(llm: LoopbackLLM, *items: dict[str, object]) -> None:
    llm.queue_chat(chat_completion(content=json.dumps({"elements": list(items)})))


def turn(planner: ScriptPlanner, index: int) -> Turn:
    frame = Frame.from_png(_png(index), 800, 600)  # a new frame each turn: no cache hit
    return planner.next_turn(Observation(frame=frame, task="t", step_index=index), [])


def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (800, 600), (seed % 256, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def test_click_by_role_and_name_clicks_the_element_centre(tmp_path: Path,
                                                          llm: LoopbackLLM) -> None:
    planner = planner_for(tmp_path, llm, '  - click: {role: "push button", name: "Save"}\n')
    shown(llm, WRAP_OFF, SAVE)
    first = turn(planner, 0)
    assert first.actions[0].action == Click(x=120, y=60)
    assert first.actions[0].raw == {"line": 3, "click_element": {
        "role": "push button", "name": "Save", "box": [100, 50, 140, 70], "source": "vlm"}}
    assert turn(planner, 1).finished == "done"


def test_assert_element_checks_a_state_before_and_after_toggling(tmp_path: Path,
                                                                 llm: LoopbackLLM) -> None:
    planner = planner_for(tmp_path, llm, (
        "  - assert_element: {role: check box, name: Wrap lines, state: not checked}\n"
        "  - click: {role: check box, name_re: '^Wrap'}\n"
        "  - assert_element: {role: check_box, name: Wrap lines, state: checked}\n"))
    shown(llm, WRAP_OFF)
    assert turn(planner, 0).actions[0].action == Click(x=20, y=15)
    shown(llm, WRAP_ON)
    done = turn(planner, 1)
    assert done.finished == "done"
    assert "found" in done.message


def test_an_element_not_shown_fails_naming_the_nearest_candidates(tmp_path: Path,
                                                                  llm: LoopbackLLM) -> None:
    planner = planner_for(tmp_path, llm,
                          "  - assert_element: {role: push button, name: Sav, state: checked}\n")
    shown(llm, WRAP_OFF, SAVE)
    failed = turn(planner, 0)
    assert failed.finished == "failed"
    assert failed.message.startswith("line 3: no element matches role 'push button', "
                                     "name 'Sav', state 'checked'; nearest: push button 'Save'")


def test_wait_for_element_polls_until_it_shows(tmp_path: Path, llm: LoopbackLLM) -> None:
    planner = planner_for(tmp_path, llm, "  - wait_for_element: {name: Save, timeout: 30}\n")
    shown(llm, WRAP_OFF)
    assert turn(planner, 0).message == "looking for \"name 'Save'\""
    shown(llm, SAVE)
    assert turn(planner, 1).finished == "done"


@pytest.mark.parametrize(("step", "says"), [
    ("click: {role: push button, nme: Save}", "steps[0].click: unknown field(s): nme"),
    ("assert_element: {state: checked}", "expected a mapping with role, name or name_re"),
    ("wait_for_element: {name: a, name_re: b}", "give name or name_re, not both"),
    ("click: {name_re: '(', role: x}", "name_re '(' is not a regular expression"),
])
def test_malformed_element_steps_name_the_field(tmp_path: Path, step: str, says: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"task: t\nsteps:\n  - {step}\n", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"bad\.yaml:3") as failure:
        load_script(path)
    assert says in str(failure.value)
