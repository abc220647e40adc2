"""The exec attach stream: binary-safe stdout, stderr kept apart, stdin end-of-file honoured."""

from __future__ import annotations

import os
import threading

import docker
import pytest

from sandbox.docker import DockerSandbox
from sandbox.docker_exec import ExecStream

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def test_stdout_and_stderr_are_demultiplexed(desktop: DockerSandbox,
                                             docker_client: docker.DockerClient) -> None:
    script = "printf 'out\\n'; printf 'err one\\nerr two\\n' >&2; printf '\\000\\001\\377'"
    stream = ExecStream.start(docker_client.api, desktop.container_id, ["sh", "-c", script])
    try:
        stdout = stream.reader.read()
    finally:
        stream.close()
    assert stdout == b"out\n\x00\x01\xff"
    assert list(stream.stderr.recent) == ["err one", "err two"]
    assert stream.exit_code() == 0


def test_a_megabyte_round_trips_through_stdin_and_stdout(
        desktop: DockerSandbox, docker_client: docker.DockerClient) -> None:
    payload = os.urandom(1 << 20)
    stream = ExecStream.start(docker_client.api, desktop.container_id, ["cat"])

    def feed() -> None:
        stream.writer.write(payload)
        stream.close_stdin()  # cat sees end of file and exits

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        echoed = stream.reader.read()
    finally:
        feeder.join()
        stream.close()
    assert echoed == payload
