"""``deskhand mcp --http``: streamable HTTP behind a bearer token, on loopback only."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.mcpserver.conftest import ROOT, SERVER, data_of, http_server, http_session
from tests.mcpserver.scenario import check_audit, full_desktop_session

pytestmark = pytest.mark.anyio

FAKE = ["--sandbox", "fake", "--no-perception"]
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.x11
@pytest.mark.slow
async def test_a_client_drives_a_local_desktop_over_http(db_path: Path) -> None:
    with http_server(["--sandbox", "local", "--db", str(db_path),
                      "--approval-timeout", "4"]) as server:
        async with http_session(server) as session:
            session_id = await full_desktop_session(session, db_path)
    check_audit(db_path, session_id, client="mcp")


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_missing_or_wrong_token_is_refused(db_path: Path, token: str | None) -> None:
    with http_server([*FAKE, "--db", str(db_path)]) as server:
        headers = {**ACCEPT, **(server.headers(token) if token else {})}
        refused = httpx.post(server.url, json=INITIALIZE, headers=headers, timeout=30)
        accepted = httpx.post(server.url, json=INITIALIZE,
                              headers={**ACCEPT, **server.headers()}, timeout=30)
    assert refused.status_code == 401
    assert accepted.status_code == 200


async def test_the_client_sdk_with_the_token_gets_tools_and_a_screenshot(db_path: Path) -> None:
    with http_server([*FAKE, "--db", str(db_path)]) as server:
        async with http_session(server) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            shot = await session.call_tool("screenshot", {})
    assert {"screenshot", "computer", "session", "await_approval"} == names
    assert data_of(shot)["status"] == "done"


def test_it_listens_on_loopback_only(db_path: Path) -> None:
    with http_server([*FAKE, "--db", str(db_path)]) as server:
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(ConnectionRefusedError), \
                    socket.create_connection((other, port), timeout=5):
                pass
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_a_remote_address_needs_allow_remote(db_path: Path) -> None:
    done = subprocess.run([*SERVER, *FAKE, "--http", "0.0.0.0:8765", "--db", str(db_path)],
                          cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr
    assert "--allow-remote" in done.stderr


def _non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address
