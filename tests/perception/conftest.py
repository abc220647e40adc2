"""Fixtures for perception tests: loaded models, a real X desktop, Pillow-drawn screens."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import mss
import pytest
from PIL import Image, ImageDraw, ImageFont

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.triage import CentroidTriager
from sandbox.base import Frame

FONTS = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(scope="session")
def reader() -> RapidOcrReader:
    return RapidOcrReader.load(threads=2)


@pytest.fixture
def parser(reader: RapidOcrReader) -> OcrScreenParser:
    return OcrScreenParser(reader)


@pytest.fixture(scope="session")
def triager() -> CentroidTriager:
    return CentroidTriager.load()


# -- Pillow-drawn screens ---------------------------------------------------

Block = tuple[int, int, str, int]  # x, y, text, font size


def font(size: int, *, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    family = "DejaVuSansMono" if mono else "DejaVuSans"
    return ImageFont.truetype(str(FONTS / f"{family}{'-Bold' if bold else ''}.ttf"), size)


def frame_of(image: Image.Image) -> Frame:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return Frame.from_png(buffer.getvalue(), image.width, image.height)


def draw_screen(blocks: Sequence[Block], *, size: tuple[int, int] = (1280, 800),
                panels: Sequence[tuple[int, int, int, int]] = (), mono: bool = False) -> Frame:
    """A grey desktop with white panels (windows, pop-ups) and dark text on top
    (in DejaVu Sans, or with ``mono`` DejaVu Sans Mono, a terminal's font)."""
    image = Image.new("RGB", size, (90, 100, 110))
    draw = ImageDraw.Draw(image)
    for panel in panels:
        draw.rectangle(panel, fill=(250, 250, 250), outline=(40, 40, 40), width=2)
    for x, y, text, size_px in blocks:
        draw.text((x, y), text, fill=(20, 20, 20), font=font(size_px, mono=mono))
    return frame_of(image)


@pytest.fixture
def draw() -> Callable[..., Frame]:
    """:func:`draw_screen`, for test modules (which cannot import this one)."""
    return draw_screen


# -- A real X desktop -------------------------------------------------------

@dataclass
class Desktop:
    """Xvfb + openbox on a free display; apps started here are ended at teardown."""

    display: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def start(self, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env={**self.env, **env}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              timeout=20, check=True)
        return done.stdout.strip()

    def wait_window(self, window_class: str) -> str:
        """Id of the first visible window of that class, waiting up to 20 s for it."""
        return self.xdotool("search", "--sync", "--onlyvisible", "--class", window_class
                            ).splitlines()[0]

    def grab(self) -> Frame:
        with mss.MSS(display=self.display) as screen:
            shot = screen.grab(screen.monitors[1])
            image = Image.frombytes("RGB", shot.size, shot.rgb)
        return frame_of(image)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_window_manager(screen: Desktop, openbox: subprocess.Popen[bytes],
                             said: IO[bytes]) -> None:
    # Windows mapped before openbox manages the screen get no focus.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        probe = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=screen.env,
                               capture_output=True, text=True, timeout=10)
        if "window id" in probe.stdout:
            return
        if openbox.poll() is not None:
            said.seek(0)
            words = said.read().decode(errors="replace").strip()
            pytest.fail(f"openbox exited (status {openbox.returncode}) on {screen.display}: "
                        f"{words[-800:]}")
        time.sleep(0.1)
    pytest.fail("openbox did not start on the test display")


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                             "1280x800x24", "-nolisten", "tcp", "-noreset"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        xvfb.kill()
        pytest.fail("Xvfb did not report a display number")
    return xvfb, f":{number}"


@pytest.fixture(scope="module")
def desktop() -> Iterator[Desktop]:
    for tool in ("Xvfb", "openbox", "xterm", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    xvfb, display = _start_xvfb()
    screen = Desktop(display, [xvfb])
    # Its words are kept (not discarded like the apps') for the failure message.
    with tempfile.TemporaryFile() as said:
        openbox = subprocess.Popen(["openbox"], env=screen.env, stdout=subprocess.DEVNULL,
                                   stderr=said)
        screen.processes.append(openbox)
        try:
            _wait_for_window_manager(screen, openbox, said)
            yield screen
        finally:
            screen.stop()

