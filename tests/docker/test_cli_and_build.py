"""``deskhand sandbox ...`` commands and the image build's change detection."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import typer
from typer.testing import CliRunner

from sandbox.build import (
    CONTEXT_LABEL,
    BuildOptions,
    SilentProgress,
    assemble_context,
    build_image,
    context_digest,
    debian_suite_of,
    default_cache_dir,
    ensure_wheels,
)
from sandbox.cli import docker_available, register
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.errors import SandboxUnavailable
from sandbox.manage import docker_ready

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]

UP_SCRIPT = """
import typer
from sandbox.cli import register
app = typer.Typer()
register(app)
app()
"""


@contextlib.contextmanager
def sandbox_up(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``sandbox up`` through the bare command group, its stderr piped; killed if it still
    runs when the test ends, and its pipe closed: a failed assertion must leave neither the
    process nor an unclosed file for a later test's garbage collection (which -W error
    would turn into that test's failure)."""
    with subprocess.Popen([sys.executable, "-c", UP_SCRIPT, "sandbox", "up", *args], cwd=REPO,
                          stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "COLUMNS": "200"}) as up:
        try:
            yield up
        finally:
            if up.poll() is None:
                up.kill()


def cli_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def container_exists(client: docker.DockerClient, key: str) -> bool:
    try:
        client.containers.get(key)
    except docker.errors.NotFound:
        return False
    return True


def test_second_build_is_a_no_op(docker_client: docker.DockerClient, desktop_image: str) -> None:
    outcome = build_image(docker_client, BuildOptions(cache_dir=default_cache_dir()),
                          SilentProgress())
    assert outcome.built is False
    assert outcome.image == desktop_image
    labels = docker_client.images.get(desktop_image).labels
    assert labels[CONTEXT_LABEL] == outcome.context_sha256


def test_context_digest_follows_content_and_build_args(tmp_path: Path,
                                                       desktop_image: str) -> None:
    wheels = ensure_wheels(BuildOptions(cache_dir=default_cache_dir()), SilentProgress())
    assemble_context(tmp_path / "context", wheels)
    before = context_digest(tmp_path / "context", {"WITH_BROWSER": "0"})
    assert context_digest(tmp_path / "context", {"WITH_BROWSER": "0"}) == before
    assert context_digest(tmp_path / "context", {"WITH_BROWSER": "1"}) != before
    dockerfile = tmp_path / "context" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert context_digest(tmp_path / "context", {"WITH_BROWSER": "0"}) != before
    assert sorted(p.name for p in (tmp_path / "context").iterdir()) == [
        "Dockerfile", "desktop", "egress_shim.py", "entrypoint.py", "executor", "vnc_bridge.py",
        "wheels"]


def test_only_debian_bases_can_be_bootstrapped() -> None:
    assert debian_suite_of("debian:bookworm-slim") == ("debian", "bookworm")
    with pytest.raises(SandboxUnavailable, match="only debian"):
        debian_suite_of("ubuntu:24.04")


def test_build_command_reports_up_to_date(desktop_image: str) -> None:
    result = CliRunner().invoke(cli_app(), ["sandbox", "build"])
    assert result.exit_code == 0, result.output
    assert f"up to date: {desktop_image}" in result.output


def test_docker_available_needs_engine_and_image(desktop_image: str) -> None:
    def no_engine() -> docker.DockerClient:
        raise docker.errors.DockerException("no engine here")

    assert docker_available(docker.from_env, image=desktop_image) is True
    assert docker_available(docker.from_env, image="deskhand/absent:never") is False
    assert docker_available(no_engine) is False
    ready, why = docker_ready(docker.from_env, image="deskhand/absent:never")
    assert ready is False
    assert "deskhand sandbox build" in why


def test_ls_and_down_find_a_sandbox_by_session(docker_client: docker.DockerClient,
                                                desktop_image: str) -> None:
    sandbox = DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image))
    with sandbox:
        listed = CliRunner().invoke(cli_app(), ["sandbox", "ls"])
        removed = CliRunner().invoke(cli_app(), ["sandbox", "down", sandbox.session])
        assert not container_exists(docker_client, sandbox.container_id)
    assert sandbox.container_id[:12] in listed.output
    assert removed.exit_code == 0, removed.output
    assert "removed 1 container" in removed.output


def test_down_without_a_target_asks_for_one() -> None:
    result = CliRunner().invoke(cli_app(), ["sandbox", "down"])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_up_prints_how_to_connect_and_cleans_up_on_ctrl_c(
        docker_client: docker.DockerClient, desktop_image: str) -> None:
    with sandbox_up("--port", "0") as up:
        assert up.stderr is not None
        lines: list[str] = []
        while not any("Ctrl-C" in line for line in lines):
            line = up.stderr.readline()
            assert line, "deskhand sandbox up ended early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        container = re.search(r"desktop (\w{12}) is up", text)
        password = re.search(r"password (\w{8})", text)
        connect = re.search(r"vncviewer 127\.0\.0\.1::(\d+)", text)
        assert container is not None, text
        assert password is not None, text
        assert connect is not None, text
        assert "no network" in text
        assert "view only" in text
        assert container_exists(docker_client, container[1])
        up.send_signal(signal.SIGINT)
        _, rest = up.communicate(timeout=30)
        assert up.returncode == 0, text + rest
    deadline = time.monotonic() + 10
    while container_exists(docker_client, container[1]):
        assert time.monotonic() < deadline, "the container outlived `sandbox up`"
        time.sleep(0.1)
