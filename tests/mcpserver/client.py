"""An MCP client in its own process, for the tests that kill it.

    python -m tests.mcpserver.client DB SANDBOX

Starts ``deskhand mcp`` over stdio, takes one screenshot (so the desktop is
up), prints ``ready``, then waits forever for the test to kill it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[2]


async def main(db: str, sandbox: str) -> None:
    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT), args=[
        "-m", "agent", "mcp", "--sandbox", sandbox, "--db", db, "--no-perception"])
    async with stdio_client(params, errlog=sys.stderr) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        shot = await session.call_tool("screenshot", {})
        print("ready" if not shot.isError else f"failed {shot.content}", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
