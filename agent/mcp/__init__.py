"""``deskhand mcp``: any MCP client drives a policed, audited, throw-away desktop.

The MCP client is the planner.  Each tool call becomes one or more steps of
the ordinary :class:`~agent.loop.AgentLoop` (validation, policy, audit intent,
approval through deskhand's own broker, execution, settle, result), running
in a worker thread per MCP session (:mod:`agent.mcp.session`).  The tools and
their replies live in :mod:`agent.mcp.server`, the step drivers behind them in
:mod:`agent.mcp.requests`, the screenshot space in :mod:`agent.mcp.screen`.
"""
