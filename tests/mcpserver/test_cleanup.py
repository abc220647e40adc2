"""No desktop outlives its MCP session: killing the client or stopping the server removes it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.manage import LABEL_OWNER_PID
from tests.mcpserver.conftest import (
    ROOT,
    alive,
    children,
    data_of,
    descendants,
    http_server,
    http_session,
    wait_for,
)

pytestmark = pytest.mark.anyio


def _start_client(db: Path, sandbox: str) -> subprocess.Popen[str]:
    client = subprocess.Popen([sys.executable, "-m", "tests.mcpserver.client", str(db), sandbox],
                              cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert client.stdout is not None
    line = client.stdout.readline()
    assert line.strip() == "ready", line
    return client


def _server_of(client: subprocess.Popen[str]) -> int:
    (server,) = children(client.pid)
    return server


def _kill_client(client: subprocess.Popen[str]) -> None:
    client.kill()
    client.wait(timeout=30)
    if client.stdout is not None:
        client.stdout.close()


@pytest.mark.x11
def test_killing_the_client_removes_the_local_desktop(db_path: Path) -> None:
    client = _start_client(db_path, "local")
    server = _server_of(client)
    desktop = descendants(server)
    assert desktop, "the local desktop runs as children of the server"
    _kill_client(client)
    wait_for(lambda: not alive(server), what="the server to exit on end of input")
    wait_for(lambda: not any(alive(pid) for pid in desktop), what="the desktop processes to end")


@pytest.mark.docker
def test_killing_the_client_removes_the_container(db_path: Path) -> None:
    import docker

    engine = docker.from_env()
    client = _start_client(db_path, "docker")
    server = _server_of(client)
    mine = {"label": f"{LABEL_OWNER_PID}={server}"}
    assert len(engine.containers.list(filters=mine)) == 1
    _kill_client(client)
    wait_for(lambda: not alive(server), what="the server to exit on end of input")
    assert engine.containers.list(all=True, filters=mine) == []
    engine.close()


@pytest.mark.x11
async def test_sigterm_to_the_server_removes_the_desktop_and_exits_143(db_path: Path) -> None:
    with http_server(["--sandbox", "local", "--db", str(db_path), "--no-perception"]) as server:
        async with http_session(server) as session:
            shot = await session.call_tool("screenshot", {})
            assert data_of(shot)["status"] == "done"
            desktop = descendants(server.process.pid)
            assert desktop
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=60)
    assert code == 143, "".join(server.stderr)
    assert not any(alive(pid) for pid in desktop)
    assert any("local desktop removed" in line for line in server.stderr), server.stderr


@pytest.mark.x11
def test_sigterm_to_a_stdio_server_removes_the_desktop(db_path: Path) -> None:
    client = _start_client(db_path, "local")
    try:
        server = _server_of(client)
        desktop = descendants(server)
        assert desktop
        subprocess.run(["kill", "-TERM", str(server)], check=True)
        wait_for(lambda: not alive(server), what="the server to exit on SIGTERM")
        wait_for(lambda: not any(alive(pid) for pid in desktop),
                 what="the desktop processes to end")
    finally:
        _kill_client(client)


@pytest.mark.x11
async def test_an_http_client_that_vanishes_loses_its_desktop_after_the_idle_timeout(
        db_path: Path) -> None:
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    args = ["--sandbox", "local", "--db", str(db_path), "--no-perception", "--idle-timeout", "2"]
    with http_server(args) as server:
        client = httpx.AsyncClient(headers=server.headers(), timeout=60)
        # Without terminate_on_close the client leaves as a killed one would: no goodbye.
        async with client, streamable_http_client(server.url, http_client=client,
                                                  terminate_on_close=False) as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("screenshot", {})
            desktop = descendants(server.process.pid)
        assert desktop
        wait_for(lambda: not any(alive(pid) for pid in desktop), timeout_s=60,
                 what="the idle session's desktop to be removed")
        assert server.process.poll() is None, "the server itself keeps serving"
