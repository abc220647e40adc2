"""The executor reads the clipboard and primary selection of a real X desktop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox.errors import ExecutorError
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11

TEXT = "rm -rf ~/keep — pasted ✓\n"


def test_an_empty_selection_reads_as_unknown() -> None:
    with LocalSandbox() as box:
        assert box.read_selection("clipboard") is None
        assert box.read_selection("primary") is None


def test_the_clipboard_and_primary_selection_are_read_exactly(
        launch_app: Callable[..., None], poll: Callable[..., Any]) -> None:
    with LocalSandbox() as box:
        launch_app(box, "selection_owner.py", ["CLIPBOARD", TEXT])
        launch_app(box, "selection_owner.py", ["PRIMARY", "echo primary"])
        assert poll(lambda: box.read_selection("clipboard"), what="the clipboard") == TEXT
        assert poll(lambda: box.read_selection("primary"), what="the primary") == "echo primary"


def test_an_unknown_selection_name_is_refused() -> None:
    with LocalSandbox() as box, pytest.raises(ExecutorError, match="clipboard or primary"):
        box.read_selection("secondary")
