"""``deskhand perceive elements``: what each parser sees on a screenshot (``live``: in
tests/docker/test_accessibility.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from typer.testing import CliRunner

from agent.perception.cli import EXIT_USAGE, register
from sandbox.base import Frame
from tests.planners.loopback import LoopbackLLM, chat_completion


def app() -> typer.Typer:
    main = typer.Typer()
    register(main)
    return main


def test_ocr_elements_are_phrases_with_boxes(tmp_path: Path,
                                             draw: Callable[..., Frame]) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(draw([(100, 100, "Save changes?", 18)]).png)
    result = CliRunner().invoke(app(), ["perceive", "elements", str(shot)])
    assert result.exit_code == 0, result.output
    [element] = [json.loads(line) for line in result.output.splitlines()]
    assert (element["role"], element["name"], element["source"]) == ("text", "Save changes?",
                                                                     "ocr")
    x0, y0, x1, y1 = element["box"]
    assert 95 <= x0 <= 102
    assert 95 <= y0 <= 104
    assert x1 > 200
    assert y1 < 125


def test_vlm_elements_come_back_in_screen_pixels(tmp_path: Path,
                                                 draw: Callable[..., Frame]) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(draw([], size=(2048, 1280)).png)
    with LoopbackLLM() as llm:
        llm.queue_chat(chat_completion(content=json.dumps({"elements": [
            {"role": "check box", "label": "Wrap", "box": [5, 5, 20, 15],
             "states": ["Checked"]}]})))
        result = CliRunner().invoke(app(), ["perceive", "elements", str(shot), "--parser",
                                            "vlm", "--vlm-model", "m", "--vlm-base-url",
                                            llm.openai_base_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"role": "check box", "name": "Wrap",
                                         "states": ["checked"], "value": "",
                                         "box": [10, 10, 40, 30], "source": "vlm"}


def test_a_screenshot_has_no_tree_to_read(tmp_path: Path, draw: Callable[..., Frame]) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(draw([(100, 100, "Save", 18)]).png)
    result = CliRunner().invoke(app(), ["perceive", "elements", str(shot), "--parser", "a11y"])
    assert result.exit_code == EXIT_USAGE
    assert "a screenshot has no accessibility tree; use `live`" in result.output


def test_an_unknown_parser_is_named_before_anything_is_read() -> None:
    result = CliRunner().invoke(app(), ["perceive", "elements", "live", "--parser", "tree"])
    assert result.exit_code == EXIT_USAGE
    assert "--parser 'tree': choose one of ocr, a11y, vlm, auto" in result.output
