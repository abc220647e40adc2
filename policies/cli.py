"""``deskhand policy``: check a policy file, explain a decision, list shipped profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

# The policy language is pydantic models; they load with the policy commands,
# not when `deskhand` registers them.
if TYPE_CHECKING:
    from policies.decision import PolicyContext, Triage
    from policies.engine import Policy

EXIT_INVALID_POLICY = 1
EXIT_USAGE = 2

policy_app = typer.Typer(help="Check, explain and list least-privilege policies.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``policy`` command group to ``app``."""
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
    action_json: Annotated[str, typer.Argument(help='The action, e.g. \'{"type": "key", '
                                               '"keys": ["alt", "f4"]}\'.')],
    window_title: Annotated[str, typer.Option(help="Active window title.")] = "",
    screen: Annotated[str, typer.Option(help="Screen size WIDTHxHEIGHT.")] = "1280x800",
    cursor: Annotated[str | None, typer.Option(help="Pointer position X,Y.")] = None,
    triage: Annotated[str | None, typer.Option(help="Triage result CATEGORY:RISK, "
                                               "e.g. payment:high.")] = None,
    injection_risk: Annotated[float, typer.Option(help="Injection risk 0..1.")] = 0.0,
    grant: Annotated[list[str] | None, typer.Option(help="A rule id granted for the "
                                                    "session (repeatable).")] = None,
) -> None:
    """Show which rules fire for one action, and why every other rule did not."""
    from sandbox.actions import ActionError, parse_action, validate_for_screen

    loaded = _load_or_exit(policy)
    context = _context(screen, window_title, cursor, triage, injection_risk, grant or [])
    try:
        action = parse_action(json.loads(action_json))
        validate_for_screen(action, context.screen_width, context.screen_height)
    except (ActionError, ValueError) as exc:
        typer.echo(f"invalid action: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"policy:   {loaded.name} ({loaded.sha256[:12]})")
    typer.echo(f"action:   {action.describe()}")
    typer.echo(loaded.explain(action, context).render())


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


@policy_app.command("list")
def list_profiles() -> None:
    """List the shipped profiles with their descriptions and hashes."""
    from policies.engine import load_profile, shipped_profiles

    for name in shipped_profiles():
        profile = load_profile(name)
        typer.echo(f"{name:<8}  {profile.sha256[:12]}  {profile.description}")
