"""``deskhand tui``: the terminal UI, built at the edge and started."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tui.graphics import GRAPHICS_CHOICES, Graphics, detect_graphics

if TYPE_CHECKING:  # settings, Textual and the log load when the TUI starts
    from agent.settings import Settings


EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    """Add ``deskhand tui`` to the deskhand command."""
    app.command(name="tui")(tui)


def tui(
    db: Annotated[Path | None, typer.Option(help="Audit database [~/.deskhand/audit.db].")] = None,
    attach: Annotated[bool, typer.Option(help="Watch runs started by `deskhand run` in other "
                                         "terminals and answer their approvals.")] = False,
    policy: Annotated[str | None, typer.Option(help="Profile name (default, strict, observe) "
                                               "or a policy YAML file.")] = None,
    sandbox: Annotated[str | None, typer.Option(help="auto, local, docker or fake.")] = None,
    script: Annotated[Path | None, typer.Option(help="Steps file for the script planner.",
                                                exists=True, dir_okay=False)] = None,
    planner: Annotated[str | None, typer.Option(
        help="script, anthropic, openai or openai-cua.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for model planners.")] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL (OpenAI-compatible "
                                                 "servers, proxies).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Stop when the estimated model cost "
                                                   "in USD exceeds this.")] = None,
    task: Annotated[str, typer.Option(help="Task text to fill in.")] = "",
    approval_timeout: Annotated[float | None, typer.Option(
        help="Seconds an approval waits before it is denied [120].")] = None,
    graphics: Annotated[str, typer.Option(help="Frame rendering: auto, halfblock, kitty "
                                          "or sixel.")] = "auto",
) -> None:
    """Delegate a task and watch it, work the approval queue, replay sessions."""
    if graphics not in GRAPHICS_CHOICES:
        raise typer.BadParameter(f"choose one of {', '.join(GRAPHICS_CHOICES)}",
                                 param_hint="--graphics")
    from agent.settings import Settings

    settings = Settings().with_overrides(db=db, policy=policy, sandbox=sandbox,
                                         planner=planner, model=model, base_url=base_url,
                                         approval_timeout_s=approval_timeout,
                                         max_cost_usd=max_cost)
    _run_app(settings, attach=attach, script=script, task=task,
             graphics=detect_graphics(graphics))


def _run_app(settings: Settings, *, attach: bool, script: Path | None, task: str,
             graphics: Graphics) -> None:
    from audit.errors import AuditError
    from audit.log import AuditLog
    from tui.app import DeskhandApp, TuiOptions
    from tui.store import TuiStore

    options = TuiOptions(settings=settings, attach=attach, task=task, script=script,
                         user=getpass.getuser(), graphics=graphics)
    try:
        log = AuditLog.open(settings.db_path, redact=settings.secrets())
    except AuditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    with log:
        app = DeskhandApp(options, TuiStore(log))
        app.run()
    if app.stopped_by is not None:
        typer.echo(f"interrupted by {app.stopped_by}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
