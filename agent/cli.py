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

from agent import assemble
from agent.approvals import BrokerApprover, TerminalPrompt, stdin_is_terminal
from agent.console import ConsoleReporter, print_summary
from agent.errors import DeskhandError
from agent.loop import AgentLoop, LoopConfig, RunSummary
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
) -> None:
    """Run a task in a sandbox, one audited step at a time."""
    on_terminal = stdin_is_terminal()
    settings = Settings().with_overrides(
        db=db, policy=policy, sandbox=sandbox, screen=screen, max_steps=max_steps,
        approval_timeout_s=approval_timeout if approval_timeout is not None
        else (None if on_terminal else 0.0),
        model=model, base_url=base_url, max_cost_usd=max_cost,
        network=network or None, planner=planner, perception=perception,
    )
    summary = _guarded(lambda: _run(settings, task, script, watch, on_terminal))
    print_summary(out, summary)
    raise typer.Exit(_exit_code(summary))


def _run(settings: Settings, task: str | None, script: Path | None, watch: bool,
         on_terminal: bool) -> RunSummary:
    from audit.log import AuditLog

    perception = assemble.make_perception(settings)
    chosen_planner = assemble.make_planner(settings, script, locator=perception)
    task_text = task or getattr(chosen_planner, "task", None) or ""
    if not task_text:
        raise typer.BadParameter("give a TASK to do (or a script with a task)")
    policy = assemble.load_policy_named(settings.policy)
    kind = assemble.choose_sandbox_kind(settings, lambda note: err.print(note))
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    with AuditLog.open(settings.db_path, redact=settings.secrets()) as log, \
            assemble.make_sandbox(kind, settings, watch=watch) as box:
        _announce(box, policy, settings)
        prompt = TerminalPrompt() if on_terminal else None
        loop = AgentLoop(
            sandbox=box, planner=chosen_planner, policy=policy, audit=log,
            approver=BrokerApprover(log, prompt=prompt), reporter=ConsoleReporter(out),
            config=LoopConfig(max_turns=settings.max_steps,
                              approval_timeout_s=settings.approval_timeout_s,
                              action_deadline_s=settings.action_deadline_s,
                              max_cost_usd=settings.max_cost_usd),
            session_extra=assemble.session_extra(box, settings),
            perceiver=assemble.loop_perceiver(chosen_planner, perception),
        )
        return loop.run(task_text)


def _announce(box: Any, policy: Any, settings: Settings) -> None:
    out.print(f"deskhand: {box.kind} sandbox {box.size}, policy {policy.name} "
              f"({policy.sha256[:12]}), log {settings.db_path}")
    viewer = box.viewer
    if viewer is not None:
        mode = "view-only" if viewer.view_only else "interactive"
        out.print(f"  watch over VNC ({mode}): vncviewer {viewer.host}::{viewer.port}  "
                  f"password: {viewer.password}")


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
        importlib.import_module(name).register(app)
    importlib.import_module("policies.cli").use_script_reader(_script_actions)


def _script_actions(path: Path) -> list[Any]:
    """For ``policy explain``: a script's actions (the script planner loads on demand)."""
    from agent.planners.script import script_actions
    return list(script_actions(path))


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
