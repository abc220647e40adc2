"""The executor's ``elements`` op on a real X desktop: the accessibility tree, or why not."""

from __future__ import annotations

import importlib.util

import pytest

from sandbox.fake import FakeSandbox
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11


def test_the_elements_op_answers_with_a_tree_or_says_what_is_missing() -> None:
    with LocalSandbox() as box:
        tree = box.elements()
    assert isinstance(tree["available"], bool)
    assert isinstance(tree["elements"], list)
    if not tree["available"]:  # a desktop with no app on the bus, or no bindings
        assert tree["reason"]
        assert tree["elements"] == []
    for element in tree["elements"]:
        assert set(element) == {"role", "name", "states", "value", "box"}
        x0, y0, x1, y1 = element["box"]
        assert x1 >= x0
        assert y1 >= y0


def test_without_the_bindings_the_reason_says_what_to_install() -> None:
    if importlib.util.find_spec("gi") is not None:
        pytest.skip("this Python has PyGObject: the local sandbox may read a tree")
    with LocalSandbox() as box:  # its executor runs under this same Python
        tree = box.elements()
    assert tree == {"available": False, "elements": [], "reason": tree["reason"]}
    assert "the AT-SPI bindings are missing" in tree["reason"]
    assert "python3-gi and gir1.2-atspi-2.0" in tree["reason"]


def test_the_fake_sandbox_reports_the_elements_a_test_gives_it() -> None:
    with FakeSandbox() as box:
        assert box.elements()["available"] is False
        box.a11y_elements.append({"role": "push button", "name": "OK", "states": [],
                                  "value": "", "box": [1, 2, 3, 4]})
        assert box.elements()["elements"][0]["name"] == "OK"
