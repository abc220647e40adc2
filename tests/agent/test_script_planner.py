"""Script files: every shorthand loads, every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ScriptError
from agent.planners.base import Observation
from agent.planners.script import ScriptPlanner, load_script
from sandbox.actions import Click, Drag, Key, Screenshot, Scroll, TypeText, Wait, Zoom
from sandbox.base import Frame

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steps.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shorthand_becomes_a_typed_action(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, """\
task: try everything
steps:
  - key: ctrl+alt+t
  - wait: 0.5
  - type: "héllo — 世界\\n"
  - click: [10, 20]
  - double_click: {x: 5, y: 6}
  - right_click: [1, 2]
  - drag: [[1, 1], [50, 60]]
  - scroll: {x: 100, y: 100, dy: 3}
  - zoom: {x0: 0, y0: 0, x1: 10, y1: 10}
  - screenshot
"""))
    kinds = [type(step.action) for step in script.steps]
    assert kinds == [Key, Wait, TypeText, Click, Click, Click, Drag, Scroll, Zoom, Screenshot]
    assert script.steps[2].action == TypeText(text="héllo — 世界\n")
    assert script.steps[4].action == Click(x=5, y=6, count=2)
    assert script.steps[3].line == 6


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("task: t\nsteps:\n  - key: ctrl+hyper\n", r"steps.yaml:3: steps\[0\]\.key: unknown key"),
        ("task: t\nsteps:\n  - type: a\n  - click: [1]\n",
         r"steps.yaml:4: steps\[1\]\.click: expected \[x, y\]"),
        ("task: t\nsteps:\n  - teleport: [1, 2]\n",
         r"steps.yaml:3: steps\[0\]: expected exactly one"),
        ("task: t\nsteps: []\n", r"steps.yaml:2: steps: expected a non-empty list"),
        ("task: t\nsteps:\n  - wait: 999\n", r"steps.yaml:3: steps\[0\]\.wait: .*seconds"),
        ("task: [oops\n", r"steps.yaml:\d+: invalid YAML"),
        ("tsak: t\nsteps:\n  - screenshot\n", r"steps.yaml:1: unknown field\(s\): tsak"),
    ],
)
def test_mistakes_name_file_line_and_field(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ScriptError, match=expected):
        load_script(write(tmp_path, body))


def test_the_demo_script_loads() -> None:
    script = load_script(EXAMPLES / "terminal-note.yaml")
    assert any(isinstance(s.action, TypeText) and "rm -rf" in s.action.text for s in script.steps)


def test_planner_proposes_one_step_per_turn_then_finishes(tmp_path: Path) -> None:
    planner = ScriptPlanner(load_script(write(tmp_path, "steps:\n  - screenshot\n  - wait: 0\n")))
    frame = Frame.from_png(b"png", 1, 1)
    seen = []
    for index in range(3):
        turn = planner.next_turn(Observation(frame=frame, task="t", step_index=index), [])
        seen.append((len(turn.actions), turn.finished))
    assert seen == [(1, None), (1, None), (0, "done")]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _AppearsLater:
    """A locator over a screen where the text shows up at a given time."""

    def __init__(self, clock: _Clock, at: float, where: tuple[int, int]) -> None:
        self.clock, self.at, self.where = clock, at, where

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None:
        return self.where if self.clock.now >= self.at else None


def _turns(planner: ScriptPlanner, clock: _Clock, count: int) -> list[object]:
    frame = Frame.from_png(b"png", 1, 1)
    seen: list[object] = []
    for index in range(count):
        turn = planner.next_turn(Observation(frame=frame, task="t", step_index=index), [])
        seen.append(turn.finished or [p.action for p in turn.actions])
        clock.now += 1.0
    return seen


def test_click_text_waits_until_the_text_appears_then_clicks_its_centre(tmp_path: Path) -> None:
    clock = _Clock()
    script = load_script(write(tmp_path, "steps:\n  - click_text: {text: OK, count: 2}\n"))
    planner = ScriptPlanner(script, locator=_AppearsLater(clock, 2.0, (40, 50)), clock=clock)
    seen = _turns(planner, clock, 4)
    assert seen[:2] == [[Wait(seconds=0.25)], [Wait(seconds=0.5)]]
    assert seen[2] == [Click(x=40, y=50, count=2)]
    assert seen[3] == "done"


def test_wait_for_text_times_out_with_the_line_named(tmp_path: Path) -> None:
    clock = _Clock()
    script = load_script(write(tmp_path, "steps:\n  - wait_for_text: {text: Saved, timeout: 2}\n"))
    planner = ScriptPlanner(script, locator=_AppearsLater(clock, 99, (1, 1)), clock=clock)
    assert _turns(planner, clock, 3)[-1] == "failed"


def test_wait_for_text_moves_straight_on_when_the_text_is_there(tmp_path: Path) -> None:
    clock = _Clock()
    script = load_script(write(tmp_path, "steps:\n  - wait_for_text: Saved\n  - screenshot\n"))
    planner = ScriptPlanner(script, locator=_AppearsLater(clock, 0, (1, 1)), clock=clock)
    assert _turns(planner, clock, 2) == [[Screenshot()], "done"]


def test_a_wait_for_text_that_succeeds_is_said_with_the_next_turn(tmp_path: Path) -> None:
    clock = _Clock()
    script = load_script(write(tmp_path, "steps:\n  - wait_for_text: Saved\n  - screenshot\n"))
    planner = ScriptPlanner(script, locator=_AppearsLater(clock, 0, (1, 1)), clock=clock)
    turn = planner.next_turn(Observation(frame=Frame.from_png(b"png", 1, 1), task="t",
                                         step_index=0), [])
    assert [p.action for p in turn.actions] == [Screenshot()]
    assert "line 2: found 'Saved' on screen" in turn.message


def test_a_timed_out_wait_for_text_proposes_a_handful_of_waits(tmp_path: Path) -> None:
    clock = _Clock()
    script = load_script(write(tmp_path, "steps:\n  - wait_for_text: {text: Saved, timeout: 30}\n"))
    planner = ScriptPlanner(script, locator=_AppearsLater(clock, 999, (1, 1)), clock=clock)
    frame = Frame.from_png(b"png", 1, 1)
    waits = 0
    for index in range(100):
        turn = planner.next_turn(Observation(frame=frame, task="t", step_index=index), [])
        if turn.finished is not None:
            break
        [proposed] = turn.actions
        assert isinstance(proposed.action, Wait)
        clock.now += proposed.action.seconds
        waits += 1
    assert turn.finished == "failed"
    assert waits <= 20, f"{waits} wait steps for one 30 s wait_for_text"


def test_grounded_steps_without_a_parser_are_refused(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "steps:\n  - click_text: OK\n"))
    with pytest.raises(ScriptError, match="need a screen parser"):
        ScriptPlanner(script)


def test_grounded_step_fields_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"steps.yaml:2: steps\[0\]\.click_text: unknown field"):
        load_script(write(tmp_path, "steps:\n  - click_text: {text: OK, colour: red}\n"))
