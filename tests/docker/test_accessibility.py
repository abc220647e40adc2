"""The accessibility tree of real GTK apps in the Docker desktop: roles, names, states and
screen boxes that land on the widgets (each click's effect is checked), xterm's missing
tree (OCR stands in), the per-frame cache, and ``deskhand perceive elements live``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from agent.perception.elements import (
    AccessibilityTree,
    CombinedSource,
    Element,
    ElementQuery,
    TextAsElements,
    find_element,
)
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.parsers import ParserChoice
from agent.runs import LazyPerception
from sandbox.actions import Click, Key, TypeText
from sandbox.base import Frame
from sandbox.docker import DockerSandbox, DockerSandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

WAIT_S = 30.0
POLL_S = 0.1


@pytest.fixture
def box(docker_client: docker.DockerClient, desktop_image: str) -> Iterator[DockerSandbox]:
    """A fresh desktop per test: apps of one test never cover another's."""
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def ocr() -> OcrScreenParser:
    return OcrScreenParser(RapidOcrReader.load(threads=2))


def launch(box: DockerSandbox, *argv: str) -> None:
    """Start an app as the desktop user would, detached from the check's session."""
    started = box.check(["setsid", "-f", "sh", "-c", 'exec "$0" "$@" >/dev/null 2>&1', *argv])
    assert started.exit_code == 0, started.stderr


def tree_elements(box: DockerSandbox) -> list[Element]:
    """The tree as perception reads it (a fresh reader: no cache between calls)."""
    return AccessibilityTree(box).elements(box.screenshot())


def wait_for(box: DockerSandbox, query: ElementQuery,
             ready: Callable[[Element], bool] = lambda _e: True) -> Element:
    """Poll the tree until an element matches ``query`` (and ``ready``); fail naming the
    nearest after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    last: Any = None
    while time.monotonic() < deadline:
        tree = box.elements()
        last = tree
        if tree["available"]:
            found = [e for e in tree_elements(box) if query.matches(e) and ready(e)]
            if found:
                return found[0]
        time.sleep(POLL_S)
    if last is not None and last["available"]:
        find_element(tree_elements(box), query)  # raises, naming the nearest candidates
    raise AssertionError(f"no {query.describe()} appeared: {last}")


def click_center(box: DockerSandbox, element: Element) -> None:
    x, y = element.center
    box.execute(Click(x=x, y=y))


def inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return (outer[0] <= inner[0] <= inner[2] <= outer[2]
            and outer[1] <= inner[1] <= inner[3] <= outer[3])


def on_screen(box: DockerSandbox, element: Element) -> bool:
    x0, y0, x1, y1 = element.box
    return 0 <= x0 < x1 <= box.size.width and 0 <= y0 < y1 <= box.size.height


# --- the calculator --------------------------------------------------------------------------


def test_calculator_buttons_land_where_they_are_drawn_and_the_display_shows_the_sum(
        box: DockerSandbox, ocr: OcrScreenParser) -> None:
    launch(box, "galculator")
    display = wait_for(box, ElementQuery(role="text"), lambda e: e.value == "0")
    elements = tree_elements(box)
    names = {e.name for e in elements if e.role == "toggle button"}
    assert set("0123456789") <= names
    assert {"+", "-", "*", "/", "=", "C", "AC"} <= names
    assert {"File", "Edit", "View", "Calculator", "Help"} <= \
        {e.name for e in elements if e.role == "menu"}
    assert all(on_screen(box, e) for e in elements)

    for name in ("7", "*", "6", "="):
        click_center(box, find_element(elements, ElementQuery(role="toggle button",
                                                              name=name)))
    shown = wait_for(box, ElementQuery(role="text"), lambda e: e.value == "42")
    assert shown.box == display.box
    frame = box.screenshot()
    read = [w.text for w in ocr.parse(frame) if inside(w.box, display.box)]
    assert read == ["42"], "what the tree says is what the display draws"


def test_a_button_that_cannot_be_used_is_not_enabled(box: DockerSandbox) -> None:
    launch(box, "galculator")
    recall = wait_for(box, ElementQuery(role="toggle button", name="MR"))
    store = find_element(tree_elements(box), ElementQuery(role="toggle button", name="MS"))
    assert "enabled" not in recall.states  # nothing stored yet
    assert {"enabled", "focusable", "sensitive"} <= store.states


# --- the text editor -------------------------------------------------------------------------


def test_editor_menus_open_where_the_tree_says_and_list_their_items(box: DockerSandbox) -> None:
    box.check(["sh", "-c", "mkdir -p ~/work && printf 'first line\\n' > ~/work/a.txt"])
    launch(box, "mousepad", "/home/desk/work/a.txt")
    text = wait_for(box, ElementQuery(role="text"), lambda e: "first line" in e.value)
    assert {"editable", "focusable"} <= text.states
    menus = {e.name for e in tree_elements(box) if e.role == "menu"}
    assert {"File", "Edit", "Search", "View", "Document", "Help"} <= menus
    assert not any(e.name == "Word Wrap" for e in tree_elements(box)), "closed menus hide"

    document = find_element(tree_elements(box), ElementQuery(role="menu", name="Document"))
    click_center(box, document)
    wrap = wait_for(box, ElementQuery(role="menu item", name="Word Wrap"))
    assert wrap.box[1] >= document.box[3] - 2, "the item is drawn below its menu"
    box.execute(Key(keys=["Escape"]))

    click_center(box, find_element(tree_elements(box), ElementQuery(role="menu", name="Edit")))
    click_center(box, wait_for(box, ElementQuery(role="menu item", name="Select All")))
    box.execute(TypeText(text="replaced"))
    wait_for(box, ElementQuery(role="text"), lambda e: e.value == "replaced")


def test_a_check_box_state_before_and_after_clicking_it(box: DockerSandbox) -> None:
    launch(box, "mousepad")
    wait_for(box, ElementQuery(role="text"))
    click_center(box, find_element(tree_elements(box), ElementQuery(role="menu", name="Edit")))
    click_center(box, wait_for(box, ElementQuery(role="menu item", name="Preferences...")))
    unchecked = ElementQuery(role="check box", name="Wrap long lines", state="not checked")
    wrap = wait_for(box, unchecked)
    assert "Preferences" in box.screenshot().window_title
    assert {"enabled", "focusable"} <= wrap.states

    click_center(box, wrap)
    checked = wait_for(box, ElementQuery(role="check box", name="Wrap long lines",
                                         state="checked"))
    assert checked.box == wrap.box
    assert "focused" in checked.states
    click_center(box, checked)
    wait_for(box, unchecked)


# --- the file manager ------------------------------------------------------------------------


def test_file_manager_icons_and_buttons_act_where_the_tree_puts_them(box: DockerSandbox) -> None:
    box.check(["sh", "-c", "mkdir -p ~/work/Reports && printf 'hi\\n' > ~/work/notes.txt"])
    launch(box, "pcmanfm", "/home/desk/work")
    location = ElementQuery(role="text")
    wait_for(box, location, lambda e: e.value == "/home/desk/work")
    notes = wait_for(box, ElementQuery(role="icon", name="notes.txt"))
    reports = find_element(tree_elements(box), ElementQuery(role="icon", name="Reports"))
    elements = tree_elements(box)
    assert {"Parent Folder", "Home Folder"} <= {e.name for e in elements
                                                if e.role == "push button"}
    assert any(e.role == "status bar" and e.name == "2 items" for e in elements)

    click_center(box, notes)
    wait_for(box, ElementQuery(role="icon", name="notes.txt", state="selected"))
    wait_for(box, ElementQuery(role="status bar", name_re=r'^"notes\.txt" \(3 bytes\)'))

    # Select the folder first: a double click that lands while the file is still the
    # view's cursor item can open the file instead (seen under load).
    click_center(box, reports)
    wait_for(box, ElementQuery(role="icon", name="Reports", state="selected"))
    x, y = reports.center
    box.execute(Click(x=x, y=y, count=2))
    wait_for(box, location, lambda e: e.value == "/home/desk/work/Reports")
    click_center(box, wait_for(box, ElementQuery(role="push button", name="Parent Folder")))
    wait_for(box, location, lambda e: e.value == "/home/desk/work")


def test_icons_of_files_that_appear_in_a_shown_folder_are_listed(box: DockerSandbox) -> None:
    """GTK 2's icon view gives an icon made before its layout no ``showing`` state."""
    box.check(["sh", "-c", "mkdir -p ~/work"])
    launch(box, "pcmanfm", "/home/desk/work")
    wait_for(box, ElementQuery(role="status bar", name="0 items"))
    box.check(["sh", "-c", "mkdir ~/work/Reports && printf 'hi\\n' > ~/work/notes.txt"])
    wait_for(box, ElementQuery(role="status bar", name="2 items"))
    notes = wait_for(box, ElementQuery(role="icon", name="notes.txt"))
    reports = wait_for(box, ElementQuery(role="icon", name="Reports"))
    assert reports.box[2] <= notes.box[0], "the folder comes first, on the same row"


# --- no tree: xterm --------------------------------------------------------------------------


def test_xterm_has_no_tree_and_says_so_while_ocr_stands_in(box: DockerSandbox,
                                                            ocr: OcrScreenParser) -> None:
    box.execute(Key(keys=["ctrl", "alt", "t"]))
    deadline = time.monotonic() + WAIT_S
    while "xterm" not in box.screenshot().window_title.lower():
        assert time.monotonic() < deadline, "no terminal opened"
        time.sleep(POLL_S)
    tree = box.elements()
    assert tree["available"] is False
    assert tree["elements"] == []
    assert "xterm" in tree["reason"]
    assert "not on the accessibility bus" in tree["reason"]

    box.execute(TypeText(text="echo tree-less 4711\n"))
    notes: list[str] = []
    sources = {"--parser auto, as a run reads it": run_perception(box, "auto").elements,
               "the tree, then OCR": CombinedSource(AccessibilityTree(box), TextAsElements(ocr),
                                                    note=notes.append).elements}
    for how, read in sources.items():
        deadline = time.monotonic() + WAIT_S
        while True:
            found = read(box.screenshot())
            echoed = sum("tree-less 4711" in e.name for e in found)
            if echoed >= 2 or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        assert echoed >= 2, (how, [e.name for e in found])
        assert {e.source for e in found} == {"ocr"}, how
    assert "xterm" in notes[-1]


def run_perception(box: DockerSandbox, parser: str) -> LazyPerception:
    perception = LazyPerception(ParserChoice(kind=parser))
    perception.attach(box)
    return perception


# --- one walk per frame ----------------------------------------------------------------------


class CountingTree:
    """The real sandbox's tree, counting how often it is walked."""

    def __init__(self, box: DockerSandbox) -> None:
        self.box = box
        self.walks = 0

    def elements(self) -> dict[str, Any]:
        self.walks += 1
        return self.box.elements()


def test_the_tree_is_walked_once_per_frame(box: DockerSandbox) -> None:
    launch(box, "galculator")
    wait_for(box, ElementQuery(role="toggle button", name="7"))
    counting = CountingTree(box)
    tree = AccessibilityTree(counting)
    frame = box.screenshot()
    first = tree.elements(frame)
    assert tree.elements(frame) == first
    assert counting.walks == 1

    click_center(box, find_element(first, ElementQuery(role="toggle button", name="7")))
    later: Frame = box.screenshot()
    assert later.sha256 != frame.sha256
    tree.elements(later)
    assert counting.walks == 2


def test_the_walk_is_bounded_in_count(box: DockerSandbox) -> None:
    launch(box, "galculator")
    wait_for(box, ElementQuery(role="toggle button", name="7"))
    reply = box._call("elements", {"max_elements": 5}, 3.0).result
    assert reply["available"] is True
    assert len(reply["elements"]) == 5
    assert reply["truncated"] is True
    assert reply["walk_ms"] < 3000


# --- deskhand perceive elements live ---------------------------------------------------------


def perceive_live(box: DockerSandbox, *flags: str) -> subprocess.CompletedProcess[str]:
    """``deskhand perceive elements live`` in a child process, against ``box``'s container."""
    return subprocess.run([sys.executable, "-m", "agent", "perceive", "elements", "live",
                           "--sandbox", box.container_id, *flags],
                          capture_output=True, text=True, timeout=300)


def test_perceive_elements_live_prints_the_running_desktops_tree(box: DockerSandbox) -> None:
    launch(box, "galculator")
    wait_for(box, ElementQuery(role="toggle button", name="7"))
    done = perceive_live(box, "--parser", "a11y")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    seven = next(e for e in printed if (e["role"], e["name"]) == ("toggle button", "7"))
    assert seven["source"] == "a11y"
    assert seven["box"] == list(find_element(
        tree_elements(box), ElementQuery(role="toggle button", name="7")).box)
    assert "enabled" in seven["states"]
    assert box.is_running(), "looking leaves the desktop as it was"
    box.execute(Click(x=seven["box"][0] + 5, y=seven["box"][1] + 5))
    wait_for(box, ElementQuery(role="text"), lambda e: e.value == "7")


def test_perceive_elements_live_auto_falls_back_to_ocr_on_xterm(box: DockerSandbox) -> None:
    box.execute(Key(keys=["ctrl", "alt", "t"]))
    deadline = time.monotonic() + WAIT_S
    while "xterm" not in box.screenshot().window_title.lower():
        assert time.monotonic() < deadline, "no terminal opened"
        time.sleep(POLL_S)
    box.execute(TypeText(text="echo live-ocr 5150\n"))
    done = perceive_live(box, "--parser", "auto")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert any("live-ocr 5150" in e["name"] and e["source"] == "ocr" for e in printed), printed
    assert "not on the accessibility bus" in done.stderr
    only_tree = perceive_live(box, "--parser", "a11y")
    assert only_tree.returncode == 1
    assert "xterm" in only_tree.stderr


def test_perceive_elements_live_names_a_missing_desktop(
        docker_client: docker.DockerClient) -> None:
    done = subprocess.run([sys.executable, "-m", "agent", "perceive", "elements", "live",
                           "--sandbox", "no-such-desktop-0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "no deskhand container matches 'no-such-desktop-0'" in done.stderr
    assert "Traceback" not in done.stderr
