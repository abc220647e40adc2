"""The ``deskhand`` command.

Each area adds its own commands through ``register(app)``: sandboxes
(``deskhand sandbox ...``), policies (``deskhand policy ...``), the audit log
(``deskhand audit ...``, ``sessions``, ``replay``, ``export``) and the TUI.
This module owns ``deskhand run`` and turns every known failure into one
readable line and an exit code.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agent.errors import DeskhandError
from agent.interrupts import EXIT_INTERRUPTED, interrupted_reason, stop_on_signals
from agent.registry import PLANNERS, SANDBOXES

# `deskhand --help` must start at once: the run's parts (provider SDKs, the
# loop, the audit log, settings) load when a run starts, not when the
# command is registered.
if TYPE_CHECKING:
    from agent.loop import RunSummary
    from agent.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SANDBOX = 3
EXIT_PLANNER = 4

app = typer.Typer(
    name="deskhand",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug in deskhand, not in the input


class _Flags:
    """Global flags given before the command."""

    debug = False


def _version_callback(given: bool) -> None:
    if given:
        from importlib.metadata import version

        typer.echo(f"deskhand {version('deskhand')}")
        raise typer.Exit()


@app.callback()
def _global_flags(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of any "
                                        "failure instead of one line.")] = False,
    _version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                           callback=_version_callback, is_eager=True)] = False,
) -> None:
    """Delegate desktop tasks to an AI agent inside a locked-down, audited, throw-away
    Linux desktop.

    Exit codes: 0 done; 1 the task failed, was stopped by a budget, or (with
    --strict) had invalid or denied steps; 2 bad input (flags, files, databases);
    3 the sandbox failed; 4 the planner or its provider failed; 70 a bug in
    deskhand; 130 stopped by Ctrl-C, SIGTERM, SIGHUP or a closed terminal.
    """
    _Flags.debug = debug
    if debug:  # the command modules below agent/ read it from here
        os.environ["DESKHAND_DEBUG"] = "1"


# Modules that add their commands to the app, each with register(app).
_COMMAND_MODULES = ("sandbox.cli", "policies.cli", "audit.cli", "tui.cli",
                    "agent.perception.cli", "agent.suites.cli", "agent.mcp.cli", "agent.undo_cli")


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
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="Docker: let the desktop reach this host through deskhand's "
        "egress proxy (repeatable; example.com, '*.example.org', 10.0.0.5:8443); added to "
        "the policy's network allow list.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many turns.")] = None,
    approval_timeout: Annotated[float | None, typer.Option(
        help="Seconds to wait for an approval before denying [120]. Without a terminal "
             "the wait is for an approver attached with `deskhand tui --attach`; with "
             "none attached the step is denied at once.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for model planners.")] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL (OpenAI-compatible "
                                                 "servers, proxies).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Stop when the estimated model cost "
                                                   "in USD exceeds this.")] = None,
    perception: Annotated[bool, typer.Option(
        help="Offline perception: triage the task for the policy, read the screen for "
             "click_text steps and for instructions aimed at the agent.")] = True,
    parser: Annotated[str | None, typer.Option(
        help="Screen parser: ocr (default), a11y (accessibility tree, OCR for text), vlm "
             "(a local vision-language model; OCR when it fails) or auto "
             "(a11y where present, plus OCR).")] = None,
    vlm_model: Annotated[str | None, typer.Option(help="Model for --parser vlm.")] = None,
    vlm_base_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible server for --parser vlm [http://127.0.0.1:11434/v1].")] = None,
    elements: Annotated[str | None, typer.Option(
        help="Model planners: the screen's elements beside each screenshot: off (default), "
             "text (a numbered list: role, name, centre, states) or marks (the list, and "
             "its numbers drawn on the screenshot). From the accessibility tree with "
             "--parser a11y|auto, else OCR's words.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any step was invalid or denied, "
                                         "even if the task finished.")] = False,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="NAME=ENV_VAR or NAME=file:PATH (owner-only file), repeatable: "
        "the planner types {{secret:NAME}}, the sandbox gets the value; it is never "
        "logged, shown or sent.")] = None,
) -> None:
    """Run a task in a sandbox, one audited step at a time.

    Exit codes: 0 done; 1 failed, stopped by a budget, or (--strict) a step was
    invalid or denied; 2 bad input; 3 the sandbox failed; 4 the planner or its
    provider failed; 130 stopped by Ctrl-C, SIGTERM, SIGHUP or a closed terminal.
    """
    from agent.approvals import stdin_is_terminal
    from agent.console import print_summary
    from agent.settings import Settings

    on_terminal = stdin_is_terminal()
    settings = Settings().with_overrides(
        db=db, policy=policy, sandbox=sandbox, screen=screen, max_steps=max_steps,
        approval_timeout_s=approval_timeout,
        model=model, base_url=base_url, max_cost_usd=max_cost,
        network=network or None, planner=planner, perception=perception,
        parser=parser, vlm_model=vlm_model, vlm_base_url=vlm_base_url, elements=elements,
        allow_hosts=tuple(allow_host) if allow_host else None,
        secret=tuple(secret) if secret else None,
    )
    summary = _guarded(lambda: _run(settings, task, script, watch, on_terminal))
    print_summary(out, summary, strict=strict)
    raise typer.Exit(_exit_code(summary, strict=strict))


def _run(settings: Settings, task: str | None, script: Path | None, watch: bool,
         on_terminal: bool) -> RunSummary:
    from agent import runs
    from agent.approvals import TerminalPrompt
    from agent.console import ConsoleReporter

    plan = runs.plan_run(settings, task=task, script=script)
    options = runs.RunOptions(
        reporter=ConsoleReporter(out), watch=watch,
        prompt=TerminalPrompt() if on_terminal else None,
        # With no terminal, whoever is attached to the database answers; nobody: deny.
        unattended=not on_terminal, note=lambda note: err.print(f"  {escape(note)}"))
    with runs.open_run(plan, options) as run:
        for line in runs.describe_run(run.sandbox, plan.policy, settings):
            out.print(line)
        return run.loop.run(plan.task)


def _exit_code(summary: RunSummary, *, strict: bool = False) -> int:
    if summary.ok:
        return EXIT_FAILED if strict and not summary.clean else 0
    if summary.outcome == "interrupted":
        return EXIT_INTERRUPTED
    if summary.outcome == "error":
        return EXIT_PLANNER if summary.failed_part == "planner" else EXIT_SANDBOX
    return EXIT_FAILED


def _guarded(work: Any) -> Any:
    """Run ``work``; turn known failures into one line and an exit code."""
    from audit.errors import AuditError
    from sandbox.errors import SandboxError

    try:
        return work()
    except (DeskhandError, AuditError, ValueError, SandboxError) as exc:
        if _Flags.debug:
            traceback.print_exc()
        if isinstance(exc, SandboxError):
            err.print(f"[red]sandbox error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_SANDBOX) from None
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt as exc:
        err.print(interrupted_reason(exc))
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _register_commands() -> None:
    # What the front end lends the command modules below it (they build no run parts).
    lent: dict[str, dict[str, Any]] = {
        "audit.cli": {"open_sandbox": _open_sandbox},
        "policies.cli": {"read_script": _script_actions, "injection_judge": _injection_judge,
                         "injection_corpus": _INJECTION_CORPUS, "live_redteam": _live_redteam},
    }
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app, **lent.get(name, {}))


def _open_sandbox(kind: str, size: Any) -> Any:
    """A fresh sandbox for ``replay --rerun``, built like a run's."""
    from agent import runs
    from agent.registry import SandboxInputs
    from agent.settings import Settings

    settings = Settings().with_overrides(screen=str(size))
    return runs.build_sandbox(kind, SandboxInputs(settings=settings, size=size))


_INJECTION_CORPUS = Path(__file__).resolve().parent / "perception" / "data"
_INJECTION_CORPUS /= "injection_corpus.jsonl"


def _injection_judge() -> Any:
    """For ``policy redteam``: a screen's text judged as the loop's perception judges it."""
    from agent.perception.injection_redteam import judge_screen_text

    return judge_screen_text


def _live_redteam() -> Any:
    """For ``policy redteam --live``: the attacks on a desktop, through the real loop."""
    from agent.redteam_live import run_live

    return run_live


def _script_actions(path: Path) -> list[Any]:
    """For ``policy explain``: a script's actions (the script planner loads on demand)."""
    from agent.planners.script import script_actions

    return list(script_actions(path))


_register_commands()


def main() -> None:
    """Console-script entry point: Ctrl-C, SIGTERM and SIGHUP all stop cleanly (exit 130);
    no traceback reaches the user unless ``--debug`` is given."""
    try:
        with stop_on_signals():
            app()
    except KeyboardInterrupt as exc:
        err.print(interrupted_reason(exc))
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if _Flags.debug or "--debug" in sys.argv[1:]:
            raise
        err.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                  "(run again with --debug for the traceback)")
        sys.exit(EXIT_INTERNAL)
