"""The shipped desktop: Ctrl+Alt+T opens a UTF-8 terminal that Unicode can be typed into."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox.actions import Key, TypeText
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11

TEXT = "héllo — 世界 ñ €"


def test_unicode_typed_into_xterm_reaches_the_file_exactly(poll: Callable[..., Any]) -> None:
    with LocalSandbox() as box:
        opened = box.execute(Key(keys=["ctrl", "alt", "t"]))
        assert opened.settle.changed
        poll(lambda: box.screenshot().window_title == "xterm", what="the terminal to get focus")
        box.execute(TypeText(text=f"printf '%s\\n' '{TEXT}' > ~/out.txt\n"))
        written = poll(lambda: box.check(["cat", "out.txt"]).stdout, what="out.txt")
        locale = box.check(["locale", "charmap"]).stdout.strip()
    assert written == TEXT + "\n"
    assert locale == "UTF-8"
