"""The desktop image has a CJK font: 世界 printed in its terminal is read back by the OCR;
and fonts for Devanagari and Thai: an order in Hindi or Thai shown in its editor is read
back in its script and flagged."""

from __future__ import annotations

import pytest

from sandbox.docker import DockerSandbox
from tests.sandbox.conftest import wait_until
from tests.sandbox.test_cjk_text import (
    ORDERS,
    flagged_as_injection,
    printed_cjk_is_read_back,
    written_order_is_read_back,
)

pytestmark = pytest.mark.docker


def test_the_docker_desktop_shows_cjk_text(desktop: DockerSandbox) -> None:
    assert desktop.check(["fc-list", ":lang=zh"]).stdout.strip(), "no CJK font in the image"
    printed_cjk_is_read_back(desktop, wait_until)


@pytest.mark.parametrize("language", sorted(ORDERS))
def test_an_order_in_hindi_or_thai_on_the_docker_desktop_is_read_and_flagged(
        desktop: DockerSandbox, language: str) -> None:
    assert flagged_as_injection(written_order_is_read_back(desktop, wait_until, language))
