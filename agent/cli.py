"""The ``deskhand`` command.

Each area adds its own commands through ``register(app)``: sandboxes
(``deskhand sandbox ...``), policies (``deskhand policy ...``), the audit log
(``deskhand audit ...``, ``sessions``, ``replay``, ``export``) and the TUI.
This module owns ``deskhand run`` and turns every known failure into one
readable line and an exit code.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agent import runs
from agent.approvals import TerminalPrompt, stdin_is_terminal
from agent.console import print_summary
from agent.errors import DeskhandError
from agent.loop import RunSummary
from agent.registry import PLANNERS, SANDBOXES
from agent.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SANDBOX = 3
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="deskhand",
    help="Delegate desktop tasks to an AI agent inside a locked-down, audited, "
    "throw-away Linux desktop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

# Modules that add their commands to the app, each with register(app).
_COMMAND_MODULES = ("sandbox.cli", "policies.cli", "audit.cli", "tui.cli",
                    "agent.perception.cli", "agent.suites.cli")


@app.command()
def run(
    task: Annotated[str | None, typer.Argument(help="What to do, in words. "
                                               "Scripts bring their own task.")] = None,
    planner: Annotated[str, typer.Option(help=PLANNERS.help() + ".")] = "script",
    script: Annotated[Path | None, typer.Option(help="Steps file for --planner script.",
                                                exists=True, dir_okay=False)] = None,
    policy: Annotated[str | None, typer.Option(help="Profile name (default, strict, observe) "
                                               "or a policy YAML file.")] = None,
    db: Annotated[Path | None, typer.Option(help="Audit database [~/.deskhand/audit.db].")] = None,
    sandbox: Annotated[str | None, typer.Option(
        help="auto (docker when an engine answers and the image is built, else local); "
             + SANDBOXES.help() + ".")] = None,
    screen: Annotated[str | None, typer.Option(help="Screen size, e.g. 1280x800.")] = None,
    watch: Annotated[bool, typer.Option(help="Docker: print how to watch over VNC.")] = False,
    network: Annotated[bool, typer.Option(help="Docker: give the desktop full network "
                                          "access (recorded in the session).")] = False,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many turns.")] = None,
    approval_timeout: Annotated[float | None, typer.Option(
        help="Seconds to wait for an approval before denying [120 on a terminal; "
             "0 otherwise: deny at once unless a TUI is attached and this is set].")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for model planners.")] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL (OpenAI-compatible "
                                                 "servers, proxies).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Stop when the estimated model cost "
                                                   "in USD exceeds this.")] = None,
    perception: Annotated[bool, typer.Option(
        help="Offline perception: triage the task for the policy, read the screen for "
             "click_text steps and for instructions aimed at the agent.")] = True,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="NAME=ENV_VAR or NAME=file:PATH (owner-only file), repeatable: "
        "the planner types {{secret:NAME}}, the sandbox gets the value; it is never "
        "logged, shown or sent.")] = None,
) -> None:
    """Run a task in a sandbox, one audited step at a time."""
    on_terminal = stdin_is_terminal()
    settings = Settings().with_overrides(
        db=db, policy=policy, sandbox=sandbox, screen=screen, max_steps=max_steps,
        approval_timeout_s=approval_timeout if approval_timeout is not None
        else (None if on_terminal else 0.0),
        model=model, base_url=base_url, max_cost_usd=max_cost,
        network=network or None, planner=planner, perception=perception,
        secret=tuple(secret) if secret else None,
    )
    summary = _guarded(lambda: _run(settings, task, script, watch, on_terminal))
    print_summary(out, summary)
    raise typer.Exit(_exit_code(summary))


def _run(settings: Settings, task: str | None, script: Path | None, watch: bool,
         on_terminal: bool) -> RunSummary:
    from agent.console import ConsoleReporter

    plan = runs.plan_run(settings, task=task, script=script)
    options = runs.RunOptions(reporter=ConsoleReporter(out), watch=watch,
                              prompt=TerminalPrompt() if on_terminal else None,
                              note=lambda note: err.print(note))
    with runs.open_run(plan, options) as run:
        for line in runs.describe_run(run.sandbox, plan.policy, settings):
            out.print(line)
        return run.loop.run(plan.task)


def _exit_code(summary: RunSummary) -> int:
    if summary.ok:
        return 0
    if summary.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if summary.outcome == "error":
        return EXIT_SANDBOX
    return EXIT_FAILED


def _guarded(work: Any) -> Any:
    """Run ``work``; turn known failures into one line and an exit code."""
    from sandbox.errors import SandboxError

    try:
        return work()
    except (DeskhandError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except SandboxError as exc:
        err.print(f"[red]sandbox error:[/] {exc}")
        raise typer.Exit(EXIT_SANDBOX) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        if name == "audit.cli":
            module.register(app, open_sandbox=_open_sandbox)
        else:
            module.register(app)


def _open_sandbox(kind: str, size: Any) -> Any:
    """A fresh sandbox for ``replay --rerun``, built like a run's."""
    from agent.registry import SandboxInputs

    settings = Settings().with_overrides(screen=str(size))
    return runs.build_sandbox(kind, SandboxInputs(settings=settings, size=size))


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
