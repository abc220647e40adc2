"""``deskhand policy``: check a policy file, explain a decision, list shipped profiles."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
import yaml

from policies.redteam_cli import InjectionJudge, Lent, add_command

# The policy language is pydantic models; they load with the policy commands,
# not when `deskhand` registers them.
if TYPE_CHECKING:
    from policies.decision import PolicyContext, TargetElement, Triage
    from policies.engine import Policy
    from policies.redteam import LiveRunner
    from policies.sequence import SequenceStep
    from policies.shell import ShellAnalysis
    from sandbox.actions import Action

EXIT_INVALID_POLICY = 1
EXIT_USAGE = 2

# Reads a deskhand script file (``steps:``) into actions.  Scripts belong to the
# agent's script planner, a layer above; the agent's CLI installs it here.
ScriptReader = Callable[[Path], "list[Action]"]
_script_reader: ScriptReader | None = None


policy_app = typer.Typer(help="Check, explain and list least-privilege policies.",
                         no_args_is_help=True)


def register(app: typer.Typer, *, read_script: ScriptReader | None = None,
             injection_judge: Callable[[], InjectionJudge] | None = None,
             injection_corpus: Path | None = None,
             live_redteam: Callable[[], LiveRunner] | None = None) -> None:
    """Add the ``policy`` command group to ``app``; ``read_script`` lets ``policy explain``
    read deskhand script files (scripts belong to the agent's script planner, above);
    ``injection_judge`` (built on first use) and ``injection_corpus`` let ``policy
    redteam`` judge injection screens with the perception detector, ``live_redteam``
    (built on first use) runs it on a desktop (``--live``)."""
    global _script_reader
    if read_script is not None:
        _script_reader = read_script
    Lent.injection_judge = injection_judge or Lent.injection_judge
    Lent.injection_corpus = injection_corpus or Lent.injection_corpus
    Lent.live_runner = live_redteam or Lent.live_runner
    app.add_typer(policy_app, name="policy")


def load_named(ref: str) -> Policy:
    """A policy file when ``ref`` is a path to one, else a shipped profile of that name."""
    from policies.engine import load_policy, load_profile

    path = Path(ref)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return load_policy(path)
    return load_profile(ref)


def _load_or_exit(ref: str) -> Policy:
    from policies.errors import PolicyError

    try:
        return load_named(ref)
    except PolicyError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_INVALID_POLICY) from None


@policy_app.command("check")
def check(
    file: Annotated[str, typer.Argument(help="A policy YAML file (or a shipped profile name).")],
) -> None:
    """Validate a policy and summarise its rules; on error print file:line: field: message."""
    policy = _load_or_exit(file)
    typer.echo(f"{policy.source}: ok")
    for line in summarize(policy):
        typer.echo(line)


def summarize(policy: Policy) -> list[str]:
    """Name, hash, budgets and one line per rule."""
    effects = [rule.effect for rule in policy.rules]
    counts = ", ".join(f"{e} {effects.count(e)}" for e in ("allow", "ask", "deny") if e in effects)
    lines = [f"  name:    {policy.name}", f"  sha256:  {policy.sha256}",
             f"  budgets: {_budget_summary(policy)}",
             f"  network: {_network_summary(policy)}",
             f"  rules:   {len(policy.rules)} ({counts})"]
    width = max(len(rule.id) for rule in policy.rules)
    lines += [f"    {rule.effect:<5}  {rule.id:<{width}}  {rule.reason}" for rule in policy.rules]
    return lines


def _network_summary(policy: Policy) -> str:
    network = policy.network
    if network.mode != "allowlist":
        return network.mode
    allowed = ", ".join(p.text for p in network.allow) or "nothing"
    denied = ", ".join(p.text for p in network.deny)
    return (f"allowlist: {allowed}" + (f"; deny {denied}" if denied else "")
            + ("; read only" if network.methods == "read_only" else ""))


def _budget_summary(policy: Policy) -> str:
    budgets = policy.budgets
    parts = [
        (budgets.max_steps, "steps {}"),
        (budgets.max_wall_time_s, "wall time {:g} s"),
        (budgets.max_actions_per_minute, "{} actions/min"),
        (budgets.max_typed_chars, "{} typed chars"),
    ]
    given = [template.format(limit) for limit, template in parts if limit is not None]
    return ", ".join(given) or "none"


@policy_app.command("explain")
def explain(
    policy: Annotated[str, typer.Argument(help="A policy YAML file or a shipped profile name.")],
    actions: Annotated[str, typer.Argument(
        help='One action (\'{"type": "key", "keys": ["alt", "f4"]}\'), a JSON list of '
             "actions, or a file: a JSON/YAML list of actions or a deskhand script.")],
    window_title: Annotated[str, typer.Option(help="Active window title.")] = "",
    screen: Annotated[str, typer.Option(help="Screen size WIDTHxHEIGHT.")] = "1280x800",
    cursor: Annotated[str | None, typer.Option(help="Pointer position X,Y.")] = None,
    triage: Annotated[str | None, typer.Option(help="Triage result CATEGORY:RISK, "
                                               "e.g. payment:high.")] = None,
    injection_risk: Annotated[float, typer.Option(help="Injection risk 0..1.")] = 0.0,
    grant: Annotated[list[str] | None, typer.Option(help="A rule id granted for the "
                                                    "session (repeatable).")] = None,
    target_element: Annotated[str | None, typer.Option(
        help="The element under a click, ROLE:NAME, e.g. 'push button:Delete' (what the "
             "run reads from the accessibility tree or OCR).")] = None,
) -> None:
    """Show which rules fire and why; for a sequence, the shell line each action submits,
    rebuilt across the actions as a run would, and the commands parsed from it."""
    from policies.sequence import decide_sequence
    from sandbox.actions import ActionError, validate_for_screen

    loaded = _load_or_exit(policy)
    context = _context(screen, window_title, cursor, triage, injection_risk, grant or [])
    context.target_element = _target(target_element) if target_element else None
    sequence, single = _read_actions(actions)
    for action in sequence:
        try:
            validate_for_screen(action, context.screen_width, context.screen_height)
        except ActionError as exc:
            _usage_error(f"invalid action: {exc}")
    typer.echo(f"policy:   {loaded.name} ({loaded.sha256[:12]})")
    if single:
        typer.echo(f"action:   {sequence[0].describe()}")
    steps = decide_sequence(loaded, sequence, context)
    for index, step in enumerate(steps):
        if not single:
            typer.echo(f"\nstep {index + 1}: {step.action.describe()} -> "
                       f"{step.decision.effect.upper()} ({', '.join(step.decision.rule_ids)})")
        for line in describe_line(step):
            typer.echo(line)
    stop = next((step for step in steps if not step.decision.allowed), steps[-1])
    if not single:
        typer.echo(f"\nwhy step {steps.index(stop) + 1} was decided so:")
    typer.echo(loaded.explain(stop.action, stop.context).render())


def describe_line(step: SequenceStep) -> list[str]:
    """The line an action submits, why it may be wrong, and what the shell would run."""
    lines = []
    context = step.context
    if context.pasted_text is not None:
        lines.append(f"pasted:   {context.pasted_text!r}")
    if context.submitted_line is not None:
        lines.append(f"line:     {context.submitted_line!r}")
        if context.line_unknown:
            reasons = ", ".join(context.line_unknown)
            lines.append(f"unknown:  rebuilt from what was seen ({reasons})")
        from policies.shell import analyze

        lines += _parsed(analyze(context.submitted_line))
    elif not step.view.after.known:
        lines.append(f"editing:  {step.view.after.text!r} (unknown: "
                     f"{', '.join(step.view.after.unknown)})")
    elif step.view.after.text:
        lines.append(f"editing:  {step.view.after.text!r}")
    return lines


def _parsed(analysis: ShellAnalysis) -> list[str]:
    lines = [f"runs:     {command.render()}" for command in analysis.commands]
    if analysis.parse_error is not None:
        lines.append(f"unparsed: {analysis.parse_error}")
    lines += [f"hides:    {why}" for why in analysis.obfuscations]
    return lines


def _usage_error(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE)


def _read_actions(given: str) -> tuple[list[Action], bool]:
    """The actions ``given`` names, and whether it was a single action."""
    path = Path(given)
    if not given.lstrip().startswith(("{", "[")) and path.is_file():
        return _actions_in_file(path), False
    try:
        data = json.loads(given)
    except ValueError as exc:
        _usage_error(f"invalid action: not JSON and not a file ({exc})")
    if isinstance(data, dict):
        return [_action(data, "action")], True
    if not isinstance(data, list) or not data:
        _usage_error("invalid action: give an action object or a non-empty list of them")
    return [_action(item, f"action {i + 1}") for i, item in enumerate(data)], False


def _action(data: Any, where: str) -> Action:
    from sandbox.actions import ActionError, parse_action

    try:
        return parse_action(data)
    except ActionError as exc:
        _usage_error(f"{where}: {exc}")
        raise  # unreachable: _usage_error exits


def _actions_in_file(path: Path) -> list[Action]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        _usage_error(f"{path}: cannot read actions: {str(exc).splitlines()[0]}")
    if isinstance(data, dict) and "steps" in data:
        return _script_actions(path)
    if isinstance(data, dict) and "actions" in data:
        data = data["actions"]
    if not isinstance(data, list) or not data:
        _usage_error(f"{path}: should hold a non-empty list of actions, "
                     "`actions:` or a deskhand script's `steps:`")
    return [_action(item, f"{path}: action {i + 1}") for i, item in enumerate(data)]


def _script_actions(path: Path) -> list[Action]:
    if _script_reader is None:
        _usage_error(f"{path}: deskhand scripts can be explained only through `deskhand`")
    assert _script_reader is not None
    try:
        actions = _script_reader(path)
    except ValueError as exc:
        _usage_error(str(exc))
    if not actions:
        _usage_error(f"{path}: the script has no steps that are actions")
    return actions


def _context(screen: str, window_title: str, cursor: str | None, triage: str | None,
             injection_risk: float, grants: list[str]) -> PolicyContext:
    from policies.decision import PolicyContext

    width, height = _pair(screen, "x", "--screen", "1280x800")
    return PolicyContext(
        screen_width=width, screen_height=height, window_title=window_title,
        cursor=_pair(cursor, ",", "--cursor", "640,400") if cursor else None,
        triage=_triage(triage) if triage else None,
        injection_risk=injection_risk, session_grants=set(grants), now=0.0,
    )


def _pair(text: str, separator: str, option: str, example: str) -> tuple[int, int]:
    try:
        first, second = (int(part) for part in text.lower().split(separator))
    except ValueError:
        raise typer.BadParameter(f"should look like {example}, not {text!r}",
                                 param_hint=option) from None
    return first, second


def _triage(text: str) -> Triage:
    from policies.decision import Triage

    category, _, risk = text.partition(":")
    risks: dict[str, Literal["low", "medium", "high"]] = {
        "low": "low", "medium": "medium", "high": "high"}
    if risk in risks:
        return Triage(category=category, risk=risks[risk], confidence=1.0)
    raise typer.BadParameter("should look like CATEGORY:RISK with RISK low, medium or high",
                             param_hint="--triage")


def _target(text: str) -> TargetElement:
    from policies.decision import TargetElement

    role, colon, name = text.partition(":")
    if not colon or not role.strip() or not name.strip():
        raise typer.BadParameter(f"should look like ROLE:NAME, e.g. 'push button:Delete', "
                                 f"not {text!r}", param_hint="--target-element")
    return TargetElement(role=role.strip(), name=name.strip())


@policy_app.command("list")
def list_profiles() -> None:
    """List the shipped profiles with their descriptions and hashes."""
    from policies.engine import load_profile, shipped_profiles

    for name in shipped_profiles():
        profile = load_profile(name)
        typer.echo(f"{name:<8}  {profile.sha256[:12]}  {profile.description}")


add_command(policy_app, lambda ref: _load_or_exit(ref))
