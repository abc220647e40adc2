"""The desktop works through DockerSandbox: screenshots, typing into real apps, checks."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from sandbox.actions import Key, TypeText
from sandbox.docker import DockerSandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

UNICODE_TEXT = "héllo wörld – ß ✓ 日本"


def wait_for_title(sandbox: DockerSandbox, word: str, timeout_s: float = 15.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        title = sandbox.screenshot().window_title
        if word in title.lower():
            return title
        time.sleep(0.1)
    raise AssertionError(f"no window titled {word!r} appeared")


def test_screenshot_is_a_png_of_the_screen(desktop: DockerSandbox) -> None:
    frame = desktop.screenshot()
    image = Image.open(io.BytesIO(frame.png))
    assert image.format == "PNG"
    assert image.size == (desktop.size.width, desktop.size.height)
    assert frame.size == desktop.size


def test_typed_unicode_reaches_a_file_through_xterm(desktop: DockerSandbox) -> None:
    desktop.execute(Key(keys=["ctrl", "alt", "t"]))
    wait_for_title(desktop, "xterm")
    command = f"printf '%s' '{UNICODE_TEXT}' > ~/typed.txt\n"
    result = desktop.execute(TypeText(text=command))
    assert result.frame.sha256 != ""
    deadline = time.monotonic() + 10
    while (check := desktop.check(["cat", "/home/desk/typed.txt"])).exit_code != 0:
        assert time.monotonic() < deadline, check.stderr
        time.sleep(0.1)
    assert check.stdout == UNICODE_TEXT


def test_check_reports_exit_codes_and_output(desktop: DockerSandbox) -> None:
    ok = desktop.check(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (ok.exit_code, ok.stdout, ok.stderr) == (3, "out\n", "err\n")
    assert desktop.check(["pwd"]).stdout.strip() == "/home/desk"


@pytest.mark.parametrize(("program", "title"), [("mousepad", "mousepad"),
                                                ("galculator", "galculator"),
                                                ("pcmanfm", "desk")])
def test_desktop_apps_open_windows_under_the_hardening(desktop: DockerSandbox, program: str,
                                                       title: str) -> None:
    detached = ["setsid", "-f", "sh", "-c", 'exec "$0" >/dev/null 2>&1', program]
    assert desktop.check(detached).exit_code == 0
    assert title in wait_for_title(desktop, title).lower()


def test_ocr_friendly_fonts_are_installed(desktop: DockerSandbox) -> None:
    families = desktop.check(["fc-list", ":", "family"]).stdout
    assert "DejaVu Sans Mono" in families
    assert "Liberation Sans" in families
