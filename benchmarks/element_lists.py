"""What ``--elements`` costs a model planner per step, beside the screenshot alone, per app.

On the real Docker desktop, each app (text editor, calculator, file manager, terminal) is
opened and its screen read the way a run reads it: the accessibility tree where the app
exposes one, OCR's phrases otherwise (agent/perception/targets.py).  The Claude request
for that screen is then built twice by the planner's own code — ``--elements off`` (the
baseline) and ``--elements text`` — and compared.

* ``elements.list_tokens.<app>``: the list's input tokens, estimated at 4 bytes a token
  (``bytes``, ``elements`` and ``source`` beside it); baseline: the screenshot's tokens,
  which every step sends anyway.  ``marks`` sends the same list, and the same number of
  image tokens (the marks are drawn on the same-size screenshot).
* ``elements.target_lookup_ms.<app>``: the element under a click on a frame already read
  for the list (the per-frame cache), beside the first read of that frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from agent.perception.elements import AccessibilityTree, Element, TextAsElements
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.targets import FrameElements
from agent.planners.anthropic import ClaudeConversation, estimate_image_tokens
from agent.planners.base import Observation
from agent.planners.element_list import ElementsMode, estimate_tokens, is_element_list
from sandbox.actions import Key, TypeText
from sandbox.base import Frame, Size
from sandbox.docker import DockerSandbox, DockerSandboxConfig

SIZE = Size(1280, 800)
DOCUMENT = ("Quarterly report, draft 3\nRevenue grew by 12 percent in the third quarter.\n"
            "Next steps: review the budget with finance and confirm the timeline.\n")


def run_benchmarks(image: str | None = None) -> list[dict[str, Any]]:
    import docker

    from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir

    client = docker.from_env()
    if image is None:
        image = build_image(client, BuildOptions(cache_dir=default_cache_dir()),
                            SilentProgress()).image
    ocr = OcrScreenParser(RapidOcrReader.load(threads=2))
    rows: list[dict[str, Any]] = []
    for app, open_app in APPS.items():
        with DockerSandbox(client, DockerSandboxConfig(image=image, size=SIZE)) as box:
            frame = open_app(box)
            rows += app_figures(app, box, frame, ocr)
    client.close()
    return rows


def app_figures(app: str, box: DockerSandbox, frame: Frame,
                ocr: OcrScreenParser) -> list[dict[str, Any]]:
    elements = FrameElements([AccessibilityTree(box), TextAsElements(ocr)], wait_s=30.0)
    started = time.perf_counter()
    listed = elements.listed(frame)
    read_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    target = elements.target_at(frame, *_middle_of(listed))
    lookup_ms = (time.perf_counter() - started) * 1000
    elements.close()
    text, screenshot = _sent_list(frame, tuple(listed))
    tokens = estimate_tokens(text)
    return [
        {"name": f"elements.list_tokens.{app}", "value": tokens, "unit": "tokens",
         "baseline": screenshot, "baseline_name": "screenshot tokens (--elements off)",
         "share": round(tokens / screenshot, 3), "bytes": len(text.encode()),
         "elements": len(text.splitlines()) - 1 if text else 0,
         "source": listed[0].source if listed else "none"},
        {"name": f"elements.target_lookup_ms.{app}", "value": round(lookup_ms, 2),
         "unit": "ms", "baseline": round(read_ms, 1), "baseline_name": "first read of the frame",
         "found": target.describe() if target else None},
    ]


def _sent_list(frame: Frame, listed: tuple[Element, ...]) -> tuple[str, int]:
    """The list the Claude planner sends with ``--elements text`` (nothing with ``off``),
    and the tokens of the screenshot both send."""
    sent: dict[str, list[str]] = {}
    conversation = ClaudeConversation(model="claude-sonnet-4-5", sandbox_size=SIZE)
    modes: tuple[ElementsMode, ...] = ("off", "text")
    for mode in modes:
        conversation = ClaudeConversation(model="claude-sonnet-4-5", sandbox_size=SIZE,
                                          elements=mode)
        conversation.observe(Observation(frame, "benchmark", 0, elements=listed), [])
        content = conversation.request_messages()[0]["content"]
        sent[mode] = [b["text"] for b in content if is_element_list(b.get("text"))]
    if sent["off"]:
        raise AssertionError("--elements off sent an element list")
    return (sent["text"] or [""])[0], estimate_image_tokens(conversation.scaler.model)


def _middle_of(listed: list[Element]) -> tuple[int, int]:
    """A point to look up: the centre of a listed element (the first button, say)."""
    buttons = [e for e in listed if "button" in e.role]
    return (buttons or listed or [Element("", "", (0, 0, 1, 1))])[0].center


def _launch(box: DockerSandbox, program: list[str], title: str) -> None:
    detached = ["setsid", "-f", "sh", "-c", 'exec "$0" "$@" >/dev/null 2>&1', *program]
    if box.check(detached).exit_code != 0:
        raise RuntimeError(f"{program[0]} did not start")
    deadline = time.monotonic() + 30
    while title not in box.screenshot().window_title.lower():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {title} window appeared")
        time.sleep(0.1)  # polling the desktop for the window


def _settled(box: DockerSandbox) -> Frame:
    """The screen once it stops changing (a no-op key's settle does the waiting)."""
    return box.execute(Key(keys=["shift"])).frame


def _editor(box: DockerSandbox) -> Frame:
    _launch(box, ["mousepad"], "mousepad")
    box.execute(TypeText(text=DOCUMENT))
    return _settled(box)


def _calculator(box: DockerSandbox) -> Frame:
    _launch(box, ["galculator"], "galculator")
    return _settled(box)


def _file_manager(box: DockerSandbox) -> Frame:
    box.check(["sh", "-c", "cd ~ && mkdir -p Documents Pictures && touch report.txt "
               "budget.ods notes.md photo.jpg"])
    _launch(box, ["pcmanfm", "/home/desk"], "desk")
    return _settled(box)


def _terminal(box: DockerSandbox) -> Frame:
    _launch(box, ["xterm"], "xterm")
    box.execute(TypeText(text="ls -la /etc | head -20\n"))
    return _settled(box)


APPS: dict[str, Callable[[DockerSandbox], Frame]] = {
    "text_editor": _editor, "calculator": _calculator, "file_manager": _file_manager,
    "terminal": _terminal,
}

if __name__ == "__main__":
    for row in run_benchmarks():
        print(json.dumps(row, ensure_ascii=False))
