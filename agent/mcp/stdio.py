"""Serving MCP over stdio: a channel nothing else can touch, ended by signals too.

The protocol owns stdin and stdout.  :func:`claim_stdio` moves them to
private descriptors first, so a library or a child process (Xvfb, the
window manager) that prints can only reach stderr, and none can read the
client's messages.

The SDK's own stdio loop reads stdin in a worker thread that cancellation
cannot interrupt: on SIGTERM the server would wait for the client's next
line before it could remove the desktop.  :class:`StdinLines` reads the same
lines, but waits for input on the event loop, where cancellation reaches it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from io import TextIOWrapper
from typing import Any

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.stdio import stdio_server

READ_CHUNK = 65536
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StdinLines:
    """Lines of a pipe or terminal on file descriptor ``fd``, read without a thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line, self._buffer = self._buffer[:newline + 1], self._buffer[newline + 1:]
                yield line.decode("utf-8", errors="replace")
                continue
            await anyio.wait_readable(self._fd)
            chunk = os.read(self._fd, READ_CHUNK)
            if not chunk:
                if self._buffer:
                    yield self._buffer.decode("utf-8", errors="replace")
                return
            self._buffer += chunk


async def serve_stdio(server: FastMCP[Any]) -> int:
    """Serve until end of input (0), SIGINT (130) or SIGTERM (143)."""
    stopped_by: list[int] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_on_signal, group.cancel_scope, stopped_by)
        await _run(server)
        group.cancel_scope.cancel()
    return EXIT_CODES.get(signal.Signals(stopped_by[0]), 1) if stopped_by else 0


def claim_stdio() -> tuple[int, int]:
    """Move the protocol off fds 0/1; returns its input and output descriptors.

    Afterwards fd 0 reads /dev/null and fd 1 (and ``sys.stdout``) write to stderr.
    """
    sys.stdout.flush()
    channel_in, channel_out = os.dup(0), os.dup(1)  # os.dup fds are not inherited
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel_in, channel_out


async def _run(server: FastMCP[Any]) -> None:
    # FastMCP.run_stdio_async is these two calls with the SDK's thread-bound stdin.
    channel_in, channel_out = claim_stdio()
    lines: Any = StdinLines(channel_in)
    out = anyio.wrap_file(TextIOWrapper(os.fdopen(channel_out, "wb"), encoding="utf-8"))
    async with stdio_server(stdin=lines, stdout=out) as (read_stream, write_stream):
        lowlevel = server._mcp_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


async def _stop_on_signal(scope: anyio.CancelScope, stopped_by: list[int]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            stopped_by.append(signum)
            scope.cancel()
            return
