"""Turn a validated policy file into compiled rules (regexes compiled once, here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from policies.conditions import (
    ActionIs,
    Condition,
    ElementNameMatches,
    InjectionRiskAtLeast,
    KeysPressed,
    PointIn,
    Region,
    TextLooksSecret,
    TextMatches,
    TriageSays,
    Unless,
    WindowTitleMatches,
)
from policies.network import NetworkRules, parse_host_pattern
from policies.rules import Budgets, Rule
from policies.schema import CommandSpec, MatchSpec, NetworkSpec, PolicyFile, RegionSpec, RuleSpec
from policies.shell_conditions import (
    CommandPattern,
    CommandRuns,
    LineUnknown,
    ShellObfuscated,
    ShellUnparsed,
)
from policies.source import FieldPath, PolicySource
from policies.task_conditions import TaskLookOnlyButChanges, TypedFromScreenIs
from sandbox.keys import parse_combo


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Everything a policy file says, ready to evaluate."""

    name: str
    description: str
    rules: tuple[Rule, ...]
    budgets: Budgets
    regions: dict[str, Region]
    network: NetworkRules = field(default_factory=NetworkRules)


def compile_source(source: PolicySource, default_name: str) -> CompiledPolicy:
    """Validate ``source`` and compile it; raises :class:`PolicyError` naming lines."""
    try:
        spec = PolicyFile.model_validate(source.data)
    except ValidationError as exc:
        raise source.translate(exc) from None
    problems = list(_cross_reference_problems(spec))
    if problems:
        raise source.error(problems)
    regions = {name: _region(name, r) for name, r in spec.regions.items()}
    return CompiledPolicy(
        name=spec.name or default_name,
        description=spec.description,
        rules=tuple(_rule(r, regions) for r in spec.rules),
        budgets=Budgets(**spec.budgets.model_dump()),
        regions=regions,
        network=_network(spec.network),
    )


def _network(spec: NetworkSpec) -> NetworkRules:
    return NetworkRules(mode=spec.mode, allow=tuple(map(parse_host_pattern, spec.allow)),
                        deny=tuple(map(parse_host_pattern, spec.deny)), methods=spec.methods)


def _cross_reference_problems(spec: PolicyFile) -> Iterator[tuple[FieldPath, str]]:
    first_seen: dict[str, int] = {}
    for index, rule in enumerate(spec.rules):
        if rule.id in first_seen:
            first = first_seen[rule.id]
            yield ("rules", index, "id"), f"duplicate rule id {rule.id!r} (first at rules[{first}])"
        first_seen.setdefault(rule.id, index)
        yield from _unknown_regions(spec, index, rule)


def _unknown_regions(spec: PolicyFile, index: int,
                     rule: RuleSpec) -> Iterator[tuple[FieldPath, str]]:
    for part, match in (("match", rule.match), ("unless", rule.unless)):
        for position, name in enumerate(match.regions if match else []):
            if name not in spec.regions:
                known = ", ".join(sorted(spec.regions)) or "none defined"
                yield (("rules", index, part, "regions", position),
                       f"unknown region {name!r} (regions: {known})")


def _region(name: str, spec: RegionSpec) -> Region:
    if spec.pixels is not None:
        x0, y0, x1, y1 = spec.pixels
        return Region(name, (x0, y0, x1, y1), fractional=False)
    assert spec.fraction is not None  # guaranteed by RegionSpec's validator
    return Region(name, spec.fraction, fractional=True)


def _rule(spec: RuleSpec, regions: dict[str, Region]) -> Rule:
    conditions = _conditions(spec.match, regions)
    if spec.unless is not None:
        conditions.append(Unless(tuple(_conditions(spec.unless, regions))))
    return Rule(spec.id, spec.effect, spec.reason, tuple(conditions), secret=spec.secret,
                checkpoint=spec.checkpoint)


def _conditions(match: MatchSpec, regions: dict[str, Region]) -> list[Condition]:
    # Cheap tests first: most rules are rejected by the action type alone.
    conditions: list[Condition] = []
    if match.actions:
        conditions.append(ActionIs(frozenset(match.actions)))
    if match.keys:
        combos = tuple(frozenset(parse_combo(c)) for c in match.keys)
        conditions.append(KeysPressed(combos, tuple(match.keys)))
    if match.injection_risk_at_least is not None:
        conditions.append(InjectionRiskAtLeast(match.injection_risk_at_least))
    if match.typed_from_screen is not None:
        conditions.append(TypedFromScreenIs(match.typed_from_screen))
    if match.task_look_only is not None:
        conditions.append(TaskLookOnlyButChanges(match.task_look_only))
    if match.triage is not None:
        triage = match.triage
        categories = frozenset(c.lower() for c in triage.category)
        conditions.append(TriageSays(categories, triage.risk_at_least, triage.confidence_at_least))
    if match.regions:
        conditions.append(PointIn(tuple(regions[name] for name in match.regions)))
    conditions.extend(_shell_conditions(match))  # before the title: most actions submit no line
    if match.window_title is not None:
        conditions.append(WindowTitleMatches(re.compile(match.window_title)))
    if match.element_name is not None:
        conditions.append(ElementNameMatches(re.compile(match.element_name)))
    if match.text:
        conditions.append(TextMatches(tuple(re.compile(p) for p in match.text)))
    if match.detectors:
        conditions.append(TextLooksSecret(tuple(match.detectors)))
    return conditions


def _shell_conditions(match: MatchSpec) -> list[Condition]:
    conditions: list[Condition] = []
    if match.line_unknown is not None:
        conditions.append(LineUnknown(frozenset(match.line_unknown)))
    if match.command:
        conditions.append(CommandRuns(tuple(_command_pattern(c) for c in match.command)))
    if match.shell_unparsed:
        conditions.append(ShellUnparsed())
    if match.shell_obfuscation:
        conditions.append(ShellObfuscated())
    return conditions


def _command_pattern(spec: CommandSpec) -> CommandPattern:
    return CommandPattern(
        names=tuple(spec.name), options_any=tuple(spec.options_any),
        args_any=tuple(re.compile(p) for p in spec.args_any),
        subcommand=frozenset(spec.subcommand), redirect_any=frozenset(spec.redirect_any),
        via_any=tuple(spec.via_any),
    )
