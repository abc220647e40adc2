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

import anthropic
import docker
import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.perception.elements import AccessibilityTree
from agent.perception.targets import FrameElements
from agent.planners.anthropic import AnthropicPlanner
from audit.log import AuditLog
from policies import load_profile
from sandbox.actions import Key, TypeText
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from tests.agent.test_click_targets import DenyingApprover
from tests.planners.loopback import (
    LoopbackLLM,
    RecordedRequest,
    ScriptedReply,
    claude_message,
    text_block,
    tool_use,
)

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


def listed_point(request: RecordedRequest, pattern: str) -> list[int]:
    lists = [b["text"] for m in request.body["messages"] if m["role"] == "user"
             for b in _blocks(m["content"]) if b.get("type") == "text"
             and b["text"].startswith("Elements on screen")]
    assert lists, "no element list was sent"
    found = re.search(rf'^\d+ push button "{pattern}" (\d+),(\d+)', lists[-1], re.M)
    assert found is not None, f"/{pattern}/ is not in the element list:\n{lists[-1]}"
    return [int(found[1]), int(found[2])]


def _blocks(content: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for block in content:
        yield block
        if block.get("type") == "tool_result":
            yield from _blocks(block["content"])


def test_dont_save_is_asked_about_and_denied_then_cancel_closes_the_dialog(
        editor_desktop: DockerSandbox, tmp_path: Path) -> None:
    box = editor_desktop
    open_save_changes_dialog(box)
    db = tmp_path / "audit.db"
    approver = DenyingApprover(db)

    def reply(request: RecordedRequest) -> ScriptedReply | dict[str, Any]:
        turn = len(llm.requests_to("/v1/messages"))
        if turn == 1:
            return claude_message([tool_use({"action": "left_click",
                                             "coordinate": listed_point(request, "Don.t Save")})])
        if turn == 2:
            return claude_message([tool_use({"action": "left_click",
                                             "coordinate": listed_point(request, "Cancel")})])
        return claude_message([text_block("Kept the notes: discarding was not approved.")])

    with LoopbackLLM() as llm, AuditLog.open(db) as log, \
            anthropic.Anthropic(api_key="test", base_url=llm.base_url, max_retries=0) as client:
        llm.respond_with("/v1/messages", reply)
        planner = AnthropicPlanner(client, model="claude-sonnet-4-5", sandbox_size=box.size,
                                   max_retries=0, elements="text")
        elements = FrameElements([AccessibilityTree(box)], wait_s=3.0)
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log), elements=elements,
                         config=LoopConfig(approval_timeout_s=60, max_turns=5,
                                           list_elements=True))
        approver.start()
        try:
            summary = loop.run("close the editor")
        finally:
            approver.done.set()
            approver.join(10)
            elements.close()
        steps = log.steps(summary.session_id)

    assert summary.outcome == "done", summary.reason
    assert [(s.decision_effect, s.status) for s in steps] == [("ask", "denied"),
                                                              ("allow", "done")]
    assert steps[0].target_element is not None
    assert steps[1].target_element is not None
    assert DONT_SAVE.match(steps[0].target_element.name)
    assert (steps[0].target_element.role, steps[0].target_element.source) == ("push button",
                                                                              "a11y")
    assert steps[1].target_element.name == "Cancel"
    [asked] = approver.seen
    assert re.search(r"on push button .Don.t Save.$", asked.summary), asked.summary
    wait_for(lambda: not any(DONT_SAVE.match(e["name"])
                             for e in box.elements().get("elements", [])), "the dialog to close")
    assert "mousepad" in box.screenshot().window_title.lower(), "the editor is still open"
