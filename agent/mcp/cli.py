"""``deskhand mcp``: serve the desktop tools over stdio or streamable HTTP.

Exit codes: 0 the client went away (end of input) or the server was asked to
stop, 2 bad flags (an unknown ``--tools`` grant, a non-loopback address
without ``--allow-remote``, a policy that does not load), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM).  Every desktop is removed before exit.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from agent.errors import ConfigError

if TYPE_CHECKING:
    from agent.mcp.run import RunParts
    from agent.mcp.server import ServerOptions
    from agent.mcp.session import Desktops, DesktopSession
    from agent.settings import Settings

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
DEFAULT_APPROVAL_TIMEOUT_S = 120.0
DEFAULT_APPROVAL_WAIT_S = 50.0
DEFAULT_IDLE_TIMEOUT_S = 1800.0

err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``deskhand mcp`` to the deskhand command."""
    app.command(name="mcp")(mcp)


def mcp(
    policy: Annotated[str | None, typer.Option(help="Profile name (default, strict, observe) "
                                               "or a policy YAML file.")] = None,
    db: Annotated[Path | None, typer.Option(help="Audit database [~/.deskhand/audit.db].")] = None,
    sandbox: Annotated[str | None, typer.Option(help="auto, local, docker or fake.")] = None,
    screen: Annotated[str | None, typer.Option(help="Screen size, e.g. 1280x800.")] = None,
    network: Annotated[bool, typer.Option(help="Docker: give the desktop full network "
                                          "access (recorded in the session).")] = False,
    http: Annotated[str | None, typer.Option(
        help="Serve streamable HTTP on HOST:PORT (e.g. 127.0.0.1:8765) instead of stdio; "
             "a bearer token is printed at start.")] = None,
    allow_remote: Annotated[bool, typer.Option(
        help="Let --http listen on an address other than loopback.")] = False,
    token: Annotated[str | None, typer.Option(
        envvar="DESKHAND_MCP_TOKEN", show_envvar=True,
        help="The bearer token HTTP clients must send [a fresh random one].")] = None,
    tools: Annotated[str, typer.Option(
        help="Which tools to offer: observe (screenshots, reading, session) or act "
             "(observe plus computer and click_text).")] = "act",
    approval_timeout: Annotated[float, typer.Option(
        help="Seconds a human has to answer an approval before it is denied.")]
        = DEFAULT_APPROVAL_TIMEOUT_S,
    approval_wait: Annotated[float, typer.Option(
        help="Seconds a tool call waits for a human before answering 'approval pending' "
             "with a ticket for await_approval (keep it under the client's timeout).")]
        = DEFAULT_APPROVAL_WAIT_S,
    max_steps: Annotated[int | None, typer.Option(help="End a session after this many "
                                                  "steps.")] = None,
    idle_timeout: Annotated[float, typer.Option(
        help="HTTP: close a session (and remove its desktop) after this many idle "
             "seconds.")] = DEFAULT_IDLE_TIMEOUT_S,
    watch: Annotated[bool, typer.Option(help="Docker: offer a view-only VNC viewer; its "
                                        "address and password are printed here.")] = True,
    perception: Annotated[bool, typer.Option(
        help="Offline OCR: read_screen, wait_for_text and click_text, the injection "
             "guard on every frame, and the element under each click for the policy.")]
        = True,
    parser: Annotated[str | None, typer.Option(
        help="What a click at coordinates is judged by: ocr (the words under it, default), "
             "a11y or auto (the accessibility tree first, then the words), vlm (a local "
             "vision-language model: DESKHAND_VLM_MODEL, DESKHAND_VLM_BASE_URL).")] = None,
) -> None:
    """Offer a policed, audited, throw-away desktop to any MCP client.

    Claude Desktop, Claude Code or your own agent drives the desktop; approvals are
    answered with `deskhand tui --attach` on the same database, never by the client.
    """
    from agent.settings import Settings

    settings = Settings().with_overrides(
        db=db, policy=policy, sandbox=sandbox, screen=screen, network=network or None,
        max_steps=max_steps, approval_timeout_s=approval_timeout, perception=perception,
        parser=parser)
    plan = _checked(lambda: _plan(settings, tools, http, allow_remote, approval_wait))
    stopped = _serve(plan, settings, token=token, idle_timeout_s=idle_timeout, watch=watch)
    raise typer.Exit(stopped)


@dataclass(frozen=True, slots=True)
class _Plan:
    tools: frozenset[str]
    approval_wait_s: float
    host: str | None
    port: int


def _plan(settings: Settings, grant: str, http: str | None, allow_remote: bool,
          approval_wait: float) -> _Plan:
    """Check every flag before anything starts."""
    from agent import runs
    from agent.mcp.tools import granted_tools

    tools = granted_tools(grant, perception=settings.perception)
    runs.load_policy_named(settings.policy)
    runs.screen_size(settings)
    runs.parser_choice(settings)
    if settings.sandbox == "local" and settings.network:
        raise ConfigError("--network is only for the docker sandbox; the local one has none")
    if approval_wait <= 0 or settings.approval_timeout_s < 0:
        raise ConfigError("--approval-wait must be above 0 and --approval-timeout at least 0")
    host, port = _address(http, allow_remote) if http is not None else (None, 0)
    return _Plan(tools, approval_wait, host, port)


def _address(http: str, allow_remote: bool) -> tuple[str, int]:
    from agent.mcp.auth import is_loopback

    host, sep, port_text = http.rpartition(":")
    if not sep or not port_text.isdigit() or not host or int(port_text) > 65535:
        raise ConfigError(f"--http: expected HOST:PORT such as 127.0.0.1:8765, not {http!r}")
    host = host.strip("[]")
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(f"--http: {host} is not a loopback address; the desktop would be "
                          "reachable from other machines (add --allow-remote if you mean it)")
    return host, int(port_text)


def _checked(work: Callable[[], _Plan]) -> _Plan:
    from policies.errors import PolicyError

    try:
        return work()
    except (ConfigError, PolicyError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from None


# -- serving ------------------------------------------------------------------------


def _serve(plan: _Plan, settings: Settings, *, token: str | None, idle_timeout_s: float,
           watch: bool) -> int:
    from agent.mcp.session import Desktops

    desktops = Desktops()
    options = _server_options(plan, settings)
    make_desktop = _desktop_factory(settings, watch=watch, approval_prompt=plan.host is not None)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if plan.host is None:
            return _serve_stdio(plan, options, make_desktop, desktops, settings)
        return _serve_http(plan, options, make_desktop, desktops, settings, token,
                           idle_timeout_s)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except _Terminated:
        return EXIT_TERMINATED
    finally:
        desktops.close_all()
        signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """SIGTERM arrived; unwinds like Ctrl-C so every desktop is removed."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


def _server_options(plan: _Plan, settings: Settings) -> ServerOptions:
    from agent import runs
    from agent.mcp.server import ServerOptions

    perception = runs.LazyPerception() if settings.perception else None
    hint = (f"A human answers approvals with `deskhand tui --attach --db {settings.db_path}`.")
    return ServerOptions(tools=plan.tools, approval_wait_s=plan.approval_wait_s,
                         attach_hint=hint, read_text=perception.read if perception else None)


def _note(text: str) -> None:
    err.print(f"deskhand mcp: {text}")


def _desktop_factory(settings: Settings, *, watch: bool,
                     approval_prompt: bool) -> Callable[[str], DesktopSession]:
    from agent.approvals import TerminalPrompt, stdin_is_terminal
    from agent.mcp.run import open_run
    from agent.mcp.session import DesktopSession, SessionOptions

    # Over stdio, stdin is the protocol and the terminal (if any) is the client's.
    prompt = TerminalPrompt(stdout=sys.stderr) if approval_prompt and stdin_is_terminal() \
        else None

    def make(client: str) -> DesktopSession:
        options = SessionOptions(task=f"MCP session for {client}", max_turns=settings.max_steps,
                                 approval_timeout_s=settings.approval_timeout_s,
                                 action_deadline_s=settings.action_deadline_s, prompt=prompt)
        _note(f"new session for {client}; its desktop starts on first use")
        return DesktopSession(lambda: _announced(open_run(settings, watch=watch, note=_note)),
                              options, client=client)

    return make


@contextmanager
def _announced(run: AbstractContextManager[RunParts]) -> Iterator[RunParts]:
    """``run``, saying on stderr where to watch once it is up and when it is gone."""
    with run as parts:
        viewer = parts.sandbox.viewer
        _note(f"{parts.sandbox.kind} desktop {parts.sandbox.size} is up, policy "
              f"{parts.policy.name} ({parts.policy.sha256[:12]})")
        if viewer is not None:
            _note(f"watch over VNC (view-only): vncviewer {viewer.host}::{viewer.port}  "
                  f"password: {viewer.password}")
        yield parts
    _note(f"{parts.sandbox.kind} desktop removed")


def _banner(settings: Settings, plan: _Plan, transport: str) -> None:
    _note(f"serving {transport}; tools {', '.join(sorted(plan.tools))}; policy "
          f"{settings.policy}; audit log {settings.db_path}")
    _note(f"approvals: `deskhand tui --attach --db {settings.db_path}` (denied after "
          f"{settings.approval_timeout_s:g} s without an answer)")


def _serve_stdio(plan: _Plan, options: ServerOptions, make_desktop: Callable[[str], Any],
                 desktops: Desktops, settings: Settings) -> int:
    import anyio

    from agent.mcp.server import build_server
    from agent.mcp.stdio import serve_stdio

    server = build_server(options, make_desktop, desktops)
    _banner(settings, plan, "stdio")
    return anyio.run(serve_stdio, server)


def _serve_http(plan: _Plan, options: ServerOptions, make_desktop: Callable[[str], Any],
                desktops: Desktops, settings: Settings, token: str | None,
                idle_timeout_s: float) -> int:
    import anyio
    import uvicorn

    from agent.mcp.auth import StaticToken, bearer_settings, new_token
    from agent.mcp.server import build_server

    assert plan.host is not None
    listener = _listen(plan.host, plan.port)
    port = listener.getsockname()[1]
    shown_host = f"[{plan.host}]" if ":" in plan.host else plan.host
    url = f"http://{shown_host}:{port}"
    secret = token or new_token()
    server = build_server(options, make_desktop, desktops, host=plan.host, port=port,
                          idle_timeout_s=idle_timeout_s, token_verifier=StaticToken(secret),
                          auth=bearer_settings(url))
    uv = uvicorn.Server(uvicorn.Config(server.streamable_http_app(), log_level="warning",
                                       lifespan="on"))
    _banner(settings, plan, f"streamable HTTP at {url}/mcp")
    _note(f"bearer token: {secret}")
    anyio.run(uv.serve, [listener])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        err.print(f"[red]error:[/] --http: cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(EXIT_USAGE) from None
    listener.listen(64)
    return listener
