"""The element under a point, and a run's elements per frame read once and waited for briefly."""

from __future__ import annotations

import threading
import time
from typing import Any

from agent.perception.elements import AccessibilityTree, CombinedSource, Element, SourceNotes
from agent.perception.targets import FrameElements, element_at, outside, pressed_at
from policies.decision import TargetElement
from sandbox.actions import Click, MouseDown, MouseUp, TypeText
from sandbox.base import Frame
from sandbox.fake import FakeSandbox

DIALOG = {"role": "dialog", "name": "Delete 3 files?", "states": ["enabled"], "value": "",
          "box": [400, 250, 880, 550]}
LABEL = {"role": "label", "name": "Delete 3 files?", "states": ["enabled"], "value": "",
         "box": [420, 270, 860, 300]}
DELETE = {"role": "push button", "name": "Delete", "states": ["enabled"], "value": "",
          "box": [700, 480, 860, 530]}
CANCEL = {"role": "push button", "name": "Cancel", "states": ["enabled", "focused"],
          "value": "", "box": [520, 480, 680, 530]}


def element(role: str, name: str, box: tuple[int, int, int, int], source: str = "a11y") -> Element:
    return Element(role=role, name=name, box=box, source=source)


class Counted:
    """An element source that counts its reads and can be held back until released."""

    def __init__(self, found: list[Element], *, held: bool = False) -> None:
        self.found = found
        self.reads = 0
        self.release = threading.Event()
        if not held:
            self.release.set()

    def elements(self, frame: Frame) -> list[Element]:
        self.reads += 1
        self.release.wait(timeout=30)
        return list(self.found)


def fake_desktop(*elements: dict[str, Any]) -> FakeSandbox:
    box = FakeSandbox()
    box.start()
    box.a11y_elements.extend(elements)
    return box


def test_the_smallest_element_under_the_point_is_the_target_never_its_window() -> None:
    shown = [element("dialog", "Delete 3 files?", (400, 250, 880, 550)),
             element("push button", "Delete", (700, 480, 860, 530)),
             element("label", "Delete", (740, 495, 820, 515))]
    assert element_at(shown, 710, 485) == shown[1]
    assert element_at(shown, 780, 505) == shown[2], "the label inside the button is smaller"
    assert element_at(shown, 450, 400) is None, "inside the dialog, on nothing"
    assert element_at(shown, 860, 500) is None, "x1 is exclusive"
    twins = [element("push button", "OK", (0, 0, 10, 10)), element("label", "OK", (0, 0, 10, 10))]
    assert element_at(twins, 5, 5) == twins[1], "of equal boxes, the deeper one"


def test_a_click_presses_at_its_point_or_the_pointer_and_a_release_at_the_pointer() -> None:
    assert pressed_at(Click(x=3, y=4), (9, 9)) == (3, 4)
    assert pressed_at(Click(), (9, 9)) == (9, 9)
    assert pressed_at(MouseUp(), (9, 9)) == (9, 9)
    assert pressed_at(MouseDown(), (9, 9)) is None
    assert pressed_at(TypeText(text="x"), (9, 9)) is None


def test_the_tree_answers_the_target_with_role_name_box_and_source() -> None:
    box = fake_desktop(DIALOG, LABEL, CANCEL, DELETE)
    frame = box.screenshot()
    elements = FrameElements([AccessibilityTree(box)])
    assert elements.target_at(frame, 780, 505) == TargetElement(
        role="push button", name="Delete", box=(700, 480, 860, 530), source="a11y")
    assert elements.target_at(frame, 600, 505) == TargetElement(
        role="push button", name="Cancel", box=(520, 480, 680, 530), source="a11y")
    elements.close()


def test_a_frame_is_read_once_however_often_it_is_asked_about() -> None:
    box = fake_desktop()
    frame = box.screenshot()
    tree = Counted([element("push button", "Send", (10, 10, 90, 40))])
    elements = FrameElements([tree])
    assert elements.listed(frame)[0].name == "Send"
    assert elements.target_at(frame, 20, 20) is not None
    assert elements.target_at(frame, 500, 500) is None
    assert tree.reads == 1
    elements.close()


def test_ocr_stands_in_where_the_tree_has_nothing_under_the_point() -> None:
    box = fake_desktop(DELETE)
    frame = box.screenshot()
    words = Counted([element("text", "Send now", (10, 700, 120, 720), source="ocr")])
    elements = FrameElements([AccessibilityTree(box), words])
    assert elements.target_at(frame, 780, 505).source == "a11y"  # type: ignore[union-attr]
    assert words.reads == 0, "OCR is not asked where the tree answered"
    assert elements.target_at(frame, 50, 710) == TargetElement(
        role="text", name="Send now", box=(10, 700, 120, 720), source="ocr")
    elements.close()


def test_a_desktop_without_a_tree_falls_back_to_ocr_and_says_why_once() -> None:
    box = fake_desktop()  # no elements: the fake desktop answers available=false
    frame = box.screenshot()
    notes: list[str] = []
    words = Counted([element("text", "Delete", (10, 10, 60, 30), source="ocr")])
    elements = FrameElements([AccessibilityTree(box), words], note=notes.append)
    assert elements.target_at(frame, 20, 20) == TargetElement(
        role="text", name="Delete", box=(10, 10, 60, 30), source="ocr")
    assert elements.listed(frame)[0].source == "ocr"
    assert len(notes) == 1
    assert "no accessibility tree" in notes[0]
    elements.close()


def test_a_slow_source_holds_a_step_up_only_for_the_bound_and_serves_the_next_question() -> None:
    box = fake_desktop()
    frame = box.screenshot()
    slow = Counted([element("push button", "Pay", (10, 10, 90, 40))], held=True)
    notes: list[str] = []
    elements = FrameElements([slow], wait_s=0.05, note=notes.append)
    started = time.monotonic()
    assert elements.target_at(frame, 20, 20) is None
    assert time.monotonic() - started < 5.0
    assert "no answer within 0.05 s" in notes[0]
    slow.release.set()
    elements.wait_s = 30.0
    assert elements.target_at(frame, 20, 20) == TargetElement(
        role="push button", name="Pay", box=(10, 10, 90, 40), source="a11y")
    assert slow.reads == 1, "the read that was under way answered the second question"
    elements.close()


def test_elements_over_a_redacted_region_are_left_out() -> None:
    shown = [element("text", "password: hunter2", (10, 10, 200, 30)),
             element("push button", "Log in", (10, 50, 90, 80))]
    assert outside(shown, [(0, 0, 300, 40)]) == [shown[1]]
    assert outside(shown, []) == shown


class TitledWindows:
    """The executor's answer for windows whose apps expose no tree (xterm): the reason
    names the active window's title, which a terminal changes with every command."""

    def __init__(self) -> None:
        self.title = ""

    def elements(self) -> dict[str, Any]:
        return {"available": False, "elements": [],
                "reason": f"the active window {self.title!r} is not on the accessibility bus"}


def test_a_missing_tree_is_said_once_per_run_whatever_window_it_names() -> None:
    box = fake_desktop()
    windows = TitledWindows()
    notes: list[str] = []
    shared = SourceNotes(notes.append)
    tree = AccessibilityTree(windows)
    words = Counted([element("text", "Delete", (10, 10, 60, 30), source="ocr")])
    elements = FrameElements([tree, words], note=shared)
    steps = CombinedSource(tree, words, note=shared)  # a script's element steps, same run
    for typed in ("ls", "cd /tmp", "make"):
        box.execute(TypeText(text=typed))
        windows.title = f"user@desk: {typed}"
        frame = box.screenshot()
        assert elements.target_at(frame, 20, 20) is not None
        assert steps.elements(frame)[0].source == "ocr"
    elements.close()
    assert len(notes) == 1, notes
    assert "'user@desk: ls' is not on the accessibility bus" in notes[0]
