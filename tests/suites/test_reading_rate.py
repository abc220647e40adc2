"""Fuzzy text matching on real frames: it finds what is shown and not what is not."""

from __future__ import annotations

import docker
import pytest

from agent.suites.attempt import SharedPerception
from agent.suites.reading_rate import measure
from sandbox.docker import DockerSandbox, DockerSandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_match_rate_and_false_match_rate_on_a_real_terminal(
        docker_client: docker.DockerClient, desktop_image: str) -> None:
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)) as box:
        rates = measure(box, SharedPerception(), count=30)
    print(f"match {rates.match_rate:.2f} (plain {rates.baseline_match_rate:.2f}), false "
          f"{rates.false_match_rate:.2f} (plain {rates.baseline_false_match_rate:.2f}); "
          f"missed {rates.misses}")
    assert rates.match_rate >= 0.9, rates.misses
    assert rates.false_match_rate <= 0.05
    assert rates.matched >= rates.baseline_matched
