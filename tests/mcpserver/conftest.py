"""Helpers for the MCP tests: a real ``deskhand mcp`` server in a subprocess, spoken to
with the real ``mcp`` client SDK over stdio or streamable HTTP."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "agent", "mcp"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def server_env() -> dict[str, str]:
    # Keep the server off any terminal: approvals come from the audit database.
    return {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


@asynccontextmanager
async def stdio_session(args: list[str], errlog: Path) -> AsyncIterator[ClientSession]:
    """A client session with ``deskhand mcp ARGS`` over stdio; its stderr goes to ``errlog``."""
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], *args],
                                   cwd=str(ROOT), env=server_env())
    with errlog.open("w") as log:
        async with stdio_client(params, errlog=log) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session


@dataclass
class HttpServer:
    process: subprocess.Popen[str]
    url: str
    token: str
    stderr: list[str]

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token if token is not None else self.token}"}


@contextmanager
def http_server(args: list[str]) -> Iterator[HttpServer]:
    """``deskhand mcp --http 127.0.0.1:0 ARGS`` in a subprocess, until the block ends."""
    process = subprocess.Popen([*SERVER, "--http", "127.0.0.1:0", *args], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=server_env())
    lines: list[str] = []
    drain = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    try:
        url, token = _read_address(process, lines)
        drain.start()
        yield HttpServer(process, url, token, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain.is_alive():
            drain.join(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def _read_address(process: subprocess.Popen[str], lines: list[str]) -> tuple[str, str]:
    assert process.stderr is not None
    url = token = ""
    for line in process.stderr:
        lines.append(line)
        if found := re.search(r"streamable HTTP at (\S+)", line):
            url = found.group(1).rstrip(";")
        if found := re.search(r"bearer token: (\S+)", line):
            token = found.group(1)
            return url, token
    raise AssertionError(f"the server exited before listening: {''.join(lines)}")


@asynccontextmanager
async def http_session(server: HttpServer) -> AsyncIterator[ClientSession]:
    client = httpx.AsyncClient(headers=server.headers(), timeout=httpx.Timeout(120, read=300))
    async with client, streamable_http_client(server.url, http_client=client) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


# -- reading replies ------------------------------------------------------------------


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def image_of(result: CallToolResult) -> tuple[bytes, Image.Image]:
    (image,) = [c for c in result.content if isinstance(c, ImageContent)]
    data = base64.b64decode(image.data)
    return data, Image.open(io.BytesIO(data))


def data_of(result: CallToolResult) -> dict[str, Any]:
    assert result.structuredContent is not None, text_of(result)
    return result.structuredContent


def start_approver(db: Path, *, approve: bool) -> subprocess.Popen[str]:
    """An approver in another process, answering through the audit database."""
    return subprocess.Popen([sys.executable, "-m", "tests.mcpserver.approver", str(db),
                             "yes" if approve else "no"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def verify_audit(db: Path) -> str:
    """``deskhand audit verify`` on the database; fails the test unless it passes."""
    done = subprocess.run([*SERVER[:2], "agent", "audit", "verify", "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# -- processes --------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Every live process whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 30.0, what: str) -> Any:
    give_up = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
