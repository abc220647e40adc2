"""``deskhand policy redteam [PROFILE]``: which known attacks get through a policy.

Decision-level by default (no desktop, about a second); ``--live`` runs the
same attacks on a real desktop through the real loop, lent by the agent layer
(:data:`policies.redteam.LiveRunner`).  Exit 0: none got through; 1: some
did (or, live, some were not tried before the time limit); 2: bad input (a
bad ``--corpus`` file, nothing to run); 3: the desktop failed; 130: stopped (Ctrl-C,
SIGTERM, SIGHUP).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from policies.engine import Policy
    from policies.redteam import Attack, Breach, LiveOutcome, LiveRunner

EXIT_BREACHED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Judges a screen's text for prompt injection (the perception detector, a layer
# above), with the corpus of injection screens it ships; lent by the agent's CLI,
# as is the live runner.
InjectionJudge = Callable[[str], "tuple[float, str]"]


class Lent:
    """What the agent layer lends the command (nothing when run without ``deskhand``)."""

    injection_judge: Callable[[], InjectionJudge] | None = None
    injection_corpus: Path | None = None
    live_runner: Callable[[], LiveRunner] | None = None


def add_command(policy_app: typer.Typer, load: Callable[[str], Policy]) -> None:
    """Add ``redteam`` to the ``policy`` group; ``load`` reads a profile or exits."""

    @policy_app.command("redteam")
    def redteam(
        profile: Annotated[str, typer.Argument(
            help="A policy YAML file or a shipped profile name.")] = "default",
        corpus: Annotated[Path | None, typer.Option(
            "--corpus", help="A directory of your own cases: *.yaml evasions (the format of "
            "policies/data/redteam/evasions.yaml) and *.jsonl injection screens (id, text, "
            "label).")] = None,
        shipped: Annotated[bool, typer.Option(
            help="Run the shipped corpora too (--no-shipped: only --corpus).")] = True,
        live: Annotated[bool, typer.Option(
            help="Run the attacks on a real desktop through the real loop, policy and "
            "perception (minutes, not a second).")] = False,
        sandbox: Annotated[str, typer.Option(
            help="--live: auto (docker when an engine answers and the image is built, "
            "else local), docker or local.")] = "auto",
        time_limit: Annotated[float, typer.Option(
            help="--live: stop starting attacks after this many seconds; those not tried "
            "count as failures.")] = 3600.0,
        db: Annotated[Path | None, typer.Option(
            help="--live: record the attacks' sessions in this audit database, to replay "
            "them (default: a temporary one).")] = None,
    ) -> None:
        """Run the evasion and injection corpora against a policy and print each attack that
        gets through with the rule that let it.  Exit 0: none did; 1: some did (--live: or
        were not tried in --time-limit); 2: bad input; 3: the desktop failed."""
        policy = load(profile)
        evasions, injections = _corpora(corpus, shipped)
        if live:
            _live(policy, profile, evasions, injections, sandbox=sandbox,
                  time_limit_s=time_limit, db=db)
            return
        _decision_level(policy, evasions, injections)


def _corpora(corpus: Path | None, shipped: bool) -> tuple[list[Attack], list[Attack]]:
    from policies import redteam as rt

    evasions, injections = (rt.shipped_evasions(), _shipped_injections()) if shipped else ([], [])
    if corpus is not None:
        try:
            extra_evasions, extra_injections = rt.read_user_corpus(corpus)
        except rt.CorpusError as exc:
            for problem in exc.problems:
                typer.echo(problem, err=True)
            raise typer.Exit(EXIT_USAGE) from None
        evasions, injections = evasions + extra_evasions, injections + extra_injections
    if not evasions and not injections:
        typer.echo("nothing to run: --no-shipped needs --corpus DIR with cases", err=True)
        raise typer.Exit(EXIT_USAGE)
    return evasions, injections


def _shipped_injections() -> list[Attack]:
    from policies import redteam as rt

    if Lent.injection_corpus is None:
        return []
    return rt.read_injections(Lent.injection_corpus)


def _decision_level(policy: Policy, evasions: list[Attack], injections: list[Attack]) -> None:
    from policies import redteam as rt

    breaches = rt.evasion_breaches(policy, evasions)
    typer.echo(f"policy:     {policy.name} ({policy.sha256[:12]})")
    typer.echo(f"evasions:   {len(evasions) - len(breaches)}/{len(evasions)} stopped")
    judge = Lent.injection_judge() if Lent.injection_judge is not None and injections else None
    if judge is None:
        typer.echo("injections: skipped: the perception injection detector is unavailable "
                   "(run through `deskhand`)")
    else:
        stopped_before = len(breaches)
        breaches += rt.injection_breaches(policy, injections, judge)
        through = len(breaches) - stopped_before
        typer.echo(f"injections: {len(injections) - through}/{len(injections)} stopped")
    _verdict(policy, breaches, untried=0)


def _live(policy: Policy, profile: str, evasions: list[Attack], injections: list[Attack], *,
          sandbox: str, time_limit_s: float, db: Path | None) -> None:
    from policies import redteam as rt

    if Lent.live_runner is None:
        typer.echo("--live needs the deskhand command (run `deskhand policy redteam --live`)",
                   err=True)
        raise typer.Exit(EXIT_USAGE)
    request = rt.LiveRequest(profile=profile, evasions=evasions, injections=injections,
                             sandbox=sandbox, time_limit_s=time_limit_s, db=db,
                             progress=lambda line: typer.echo(line, err=True))
    try:
        outcome = Lent.live_runner()(request)
    except rt.LiveFailure as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:  # the session in flight was closed as interrupted
        said = str(exc) or "Ctrl-C"
        typer.echo(said if said.startswith("interrupted") else f"interrupted by {said}",
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(f"policy:     {policy.name} ({policy.sha256[:12]}), live on {outcome.desktop}")
    for kind, attacks in (("evasion", evasions), ("injection", injections)):
        typer.echo(f"{kind + 's:':<11} {_live_count(outcome, kind, len(attacks))}")
    for attack in outcome.untried:
        typer.echo(f"NOT TRIED     {attack.kind} {attack.id} ({attack.where}): the time limit "
                   f"of {time_limit_s:g} s passed")
    _verdict(policy, outcome.breaches, untried=len(outcome.untried))


def _live_count(outcome: LiveOutcome, kind: str, total: int) -> str:
    tried = outcome.tried[kind]
    through = sum(1 for b in outcome.breaches if b.attack.kind == kind)
    left_out = sum(1 for a in outcome.left_out if a.kind == kind)
    text = f"{tried - through}/{tried} stopped"
    if left_out:
        text += f", {left_out} left out (not for a live desktop)"
    if tried + left_out < total:
        text += f", {total - tried - left_out} not tried"
    return text


def _verdict(policy: Policy, breaches: list[Breach], *, untried: int) -> None:
    for breach in breaches:
        typer.echo(f"GETS THROUGH  {breach.describe()}")
    if breaches:
        typer.echo(f"{len(breaches)} attack(s) get through {policy.name}")
        raise typer.Exit(EXIT_BREACHED)
    if untried:
        typer.echo(f"no attack tried gets through, but {untried} were not tried")
        raise typer.Exit(EXIT_BREACHED)
    typer.echo("no attack gets through")
