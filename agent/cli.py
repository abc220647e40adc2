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
                    "agent.perception.cli")


@app.command()
def run(
    task: Annotated[str | None, typer.Argument(help="What to do, in words. "
                                               "Scripts bring their own task.")] = None,
    planner: Annotated[str, typer.Option(
        help="script (steps from --script), anthropic (Claude computer use), openai "
             "(an OpenAI-compatible vision model: vLLM, Ollama, llama.cpp) or openai-cua "
             "(OpenAI computer use on the Responses API).")] = "script",
    script: Annotated[Path | None, typer.Option(help="Steps file for --planner script.",
                                                exists=True, dir_okay=False)] = None,
    policy: Annotated[str | None, typer.Option(help="Profile name (default, strict, observe) "
                                               "or a policy YAML file.")] = None,
    db: Annotated[Path | None, typer.Option(help="Audit database [~/.deskhand/audit.db].")] = None,
    sandbox: Annotated[str | None, typer.Option(help="auto, local, docker or fake.")] = None,
    screen: Annotated[str | None, typer.Option(help="Screen size, e.g. 1280x800.")] = None,
    watch: Annotated[bool, typer.Option(help="Docker: print how to watch over VNC.")] = False,
    network: Annotated[bool, typer.Option(help="Docker: give the desktop full network "
                                          "access (recorded in the session).")] = False,
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
    strict: Annotated[bool, typer.Option(help="Exit 1 when any step was invalid or denied, "
                                         "even if the task finished.")] = False,
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
    )
    summary = _guarded(lambda: _run(settings, task, script, watch, on_terminal))
    print_summary(out, summary, strict=strict)
    raise typer.Exit(_exit_code(summary, strict=strict))


def _run(settings: Settings, task: str | None, script: Path | None, watch: bool,
         on_terminal: bool) -> RunSummary:
    from agent import assemble
    from agent.console import ConsoleReporter
    from agent.loop import AgentLoop, LoopConfig
    from audit.log import AuditLog

    perception = assemble.make_perception(settings)
    chosen_planner = assemble.make_planner(settings, script, locator=perception)
    task_text = task or getattr(chosen_planner, "task", None) or ""
    if not task_text:
        raise typer.BadParameter("give a TASK to do (or a script with a task)")
    policy = assemble.load_policy_named(settings.policy)
    kind = assemble.choose_sandbox_kind(settings, lambda note: err.print(note))
    with AuditLog.open(settings.db_path, redact=settings.secrets()) as log, \
            assemble.make_sandbox(kind, settings, watch=watch) as box:
        _announce(box, policy, settings)
        loop = AgentLoop(
            sandbox=box, planner=chosen_planner, policy=policy, audit=log,
            approver=_approver(log, settings, on_terminal), reporter=ConsoleReporter(out),
            config=LoopConfig(max_turns=settings.max_steps,
                              approval_timeout_s=settings.approval_timeout_s,
                              action_deadline_s=settings.action_deadline_s,
                              max_cost_usd=settings.max_cost_usd),
            session_extra=assemble.session_extra(box, settings),
            perceiver=assemble.loop_perceiver(chosen_planner, perception),
        )
        return loop.run(task_text)


def _approver(log: Any, settings: Settings, on_terminal: bool) -> Any:
    """The terminal prompt on a terminal; otherwise whoever is attached to the database."""
    from agent.approvals import BrokerApprover, TerminalPrompt
    from audit.presence import ApproverPresence

    if on_terminal:
        return BrokerApprover(log, prompt=TerminalPrompt())
    return BrokerApprover(log, anyone_attached=ApproverPresence(settings.db_path).anyone_attached,
                          say=lambda text: err.print(f"  {escape(text)}"))


def _announce(box: Any, policy: Any, settings: Settings) -> None:
    out.print(f"deskhand: {box.kind} sandbox {box.size}, policy {policy.name} "
              f"({policy.sha256[:12]}), log {settings.db_path}")
    viewer = box.viewer
    if viewer is not None:
        mode = "view-only" if viewer.view_only else "interactive"
        out.print(f"  watch over VNC ({mode}): vncviewer {viewer.host}::{viewer.port}  "
                  f"password: {viewer.password}")


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
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


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
