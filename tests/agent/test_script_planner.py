"""Script files: every shorthand loads, every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.actions import Click, Drag, Key, Screenshot, Scroll, TypeText, Wait, Zoom
from agent.errors import ScriptError
from agent.planners.base import Observation
from agent.planners.script import ScriptPlanner, load_script
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
