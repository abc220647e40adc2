"""On the real desktop: mousepad's "save changes?" dialog, read from the accessibility tree.

Claude (the real ``anthropic`` SDK against the loopback provider) is given the element
list (``--elements text``) and clicks where it says "Don't Save" is: the default profile
asks (ui.click.consequential), the approver says no, and mousepad stays open with its
text.  Then it clicks "Cancel": that runs and the dialog goes away.

NEEDS AT-SPI IN THE DESKTOP IMAGE: this test uses the sandbox's real ``elements`` op and
skips, saying why, only while that op answers ``available: false`` (an image without the
accessibility bus or its Python bindings).  It starts passing once the image has them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.actions import Key, TypeText
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from tests.agent.test_click_targets import clicks_where_listed, run_claude_with_a_denying_approver
from tests.planners.loopback import LoopbackLLM

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

DONT_SAVE = re.compile(r"^Don.t Save$")
TYPED = "notes that must not be lost"
# What sandbox/executor/a11y.py answers when the image lacks the bindings or the bus.
NO_AT_SPI = ("bindings are missing", "bus does not answer")


@pytest.fixture
def editor_desktop(docker_client: docker.DockerClient,
                   desktop_image: str) -> Iterator[DockerSandbox]:
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as box:
        yield box


def open_save_changes_dialog(box: DockerSandbox) -> list[dict[str, Any]]:
    """Start mousepad, type into it, close it: the tree of the dialog that asks first."""
    detached = ["setsid", "-f", "sh", "-c", 'exec "$0" >/dev/null 2>&1', "mousepad"]
    assert box.check(detached).exit_code == 0
    wait_for(lambda: "mousepad" in box.screenshot().window_title.lower(), "mousepad's window")
    box.execute(TypeText(text=TYPED))
    box.execute(Key(keys=["ctrl", "w"]))
    deadline = time.monotonic() + 30
    tree: dict[str, Any] = {}
    while time.monotonic() < deadline:
        tree = box.elements()
        if any(DONT_SAVE.match(e["name"]) for e in tree.get("elements", [])):
            return list(tree["elements"])
        if not tree.get("available") and any(lack in str(tree.get("reason", ""))
                                             for lack in NO_AT_SPI):
            break  # no waiting will bring a tree
        time.sleep(0.2)  # polling the desktop for the dialog
    if not tree.get("available"):
        pytest.skip("the desktop's elements op answers available:false "
                    f"({tree.get('reason')}); this test passes once the image has AT-SPI")
    raise AssertionError(f"no Don't Save button in the tree: {tree}")


def wait_for(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # polling the desktop for a state


def test_dont_save_is_asked_about_and_denied_then_cancel_closes_the_dialog(
        editor_desktop: DockerSandbox, tmp_path: Path) -> None:
    box = editor_desktop
    open_save_changes_dialog(box)
    with LoopbackLLM() as llm:
        clicks_where_listed(llm, ["Don.t Save", "Cancel"],
                            "Kept the notes: discarding them was refused.")
        summary, steps, seen = run_claude_with_a_denying_approver(
            box, llm, tmp_path / "audit.db", "close the editor", wait_s=3.0)

    assert summary.outcome == "done", summary.reason
    assert [(s.decision_effect, s.status) for s in steps] == [("ask", "denied"),
                                                              ("allow", "done")]
    assert steps[0].target_element is not None
    assert steps[1].target_element is not None
    assert DONT_SAVE.match(steps[0].target_element.name)
    assert (steps[0].target_element.role, steps[0].target_element.source) == ("push button",
                                                                              "a11y")
    assert steps[1].target_element.name == "Cancel"
    [asked] = seen
    assert re.search(r"on push button .Don.t Save.$", asked.summary), asked.summary
    wait_for(lambda: not any(DONT_SAVE.match(e["name"])
                             for e in box.elements().get("elements", [])), "the dialog to close")
    assert "mousepad" in box.screenshot().window_title.lower(), "the editor is still open"
    assert TYPED in [e["value"] for e in box.elements()["elements"] if e["role"] == "text"]
