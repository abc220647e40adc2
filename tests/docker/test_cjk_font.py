"""The desktop image has a CJK font: 世界 printed in its terminal is read back by the OCR."""

from __future__ import annotations

import pytest

from sandbox.docker import DockerSandbox
from tests.sandbox.conftest import wait_until
from tests.sandbox.test_cjk_text import printed_cjk_is_read_back

pytestmark = pytest.mark.docker


def test_the_docker_desktop_shows_cjk_text(desktop: DockerSandbox) -> None:
    assert desktop.check(["fc-list", ":lang=zh"]).stdout.strip(), "no CJK font in the image"
    printed_cjk_is_read_back(desktop, wait_until)
