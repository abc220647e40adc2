"""The shape of a policy file, as pydantic models (unknown fields are errors).

A policy file is YAML::

    name: default
    regions:
      close-corner: {fraction: [0.97, 0.0, 1.0, 0.04]}
    budgets: {max_steps: 500, max_actions_per_minute: 120}
    rules:
      - id: keys.vt-switch
        effect: deny
        reason: Switching to a text console leaves the sandboxed desktop.
        match: {keys: [ctrl+alt+f1, ctrl+alt+f2]}

Within ``match`` every given condition must hold (no ``match`` at all:
the rule applies to everything); within a list any one item is enough.
``unless`` takes the same conditions and, when all of them hold, makes the
rule not apply.  A list of one may be written without brackets.

``actions``
    action types (``click``, ``type``, ``key`` ...; see ``sandbox/actions.py``).
``text``
    regular expressions searched in the text of a ``type`` action.
``detectors``
    named secret detectors (:data:`policies.detectors.DETECTORS`) run on
    typed text.  ``secret: true`` on the rule marks matched text secret.
``keys``
    key combinations such as ``ctrl+alt+f1`` in any spelling
    :mod:`sandbox.keys` knows.  A combo matches a ``key``/``hold_key`` action
    that presses all of its keys, in any order and with any extra keys — so
    ``alt+f4`` also catches ``ctrl+alt+f4``: a deny cannot be dodged by adding
    shift, and an allow by combo is correspondingly broad.
``regions``
    named regions (top-level ``regions``); matches when any point of the
    action is inside.  A click without coordinates and mouse down/up are
    placed at ``PolicyContext.cursor`` when the loop knows it.
``window_title``
    a regular expression searched in the active window's title.
``element_name``
    a regular expression searched in the name of the element a click aims at
    (``PolicyContext.target_element``); never matches a click at bare coordinates.
``triage``
    ``category`` (any of, case-insensitive), ``risk_at_least``,
    ``confidence_at_least``; never matches when triage did not run.
``injection_risk_at_least``
    a threshold on ``PolicyContext.injection_risk``.
``command``
    commands the shell would run (:mod:`policies.shell`), in the action's
    text or in the whole line it submits: each item has ``name`` (shell-style
    patterns: ``rm``, ``mkfs*``) and optionally ``options_any`` (``-r``
    matches ``-fr`` anywhere; ``--recursive`` matches ``--rec``),
    ``args_any`` (regexes searched in each argument), ``subcommand``
    (``git clean``), ``redirect_any`` (``>``) and ``via_any`` (``xargs``,
    ``find -exec``, ``sudo``, ``sh -c`` ...).
``shell_obfuscation``
    ``true``: the submitted line hides what it runs (a variable or command
    substitution in command position, text piped into a shell, inline
    interpreter code touching files, processes or the network ...).
``shell_unparsed``
    ``true``: the submitted line cannot be parsed as shell.
``line_unknown``
    ``true`` or reasons (``history``, ``completion``, ``command_completion``,
    ``motion``, ``paste``): the submitted line could not be rebuilt exactly.

``typed_from_screen``
    ``true``: the typed text is a command, URL, address, amount or
    credential that was shown on screen and is not in the task
    (``PolicyContext.typed_from_screen``); ``false``: it is not.
``task_look_only``
    ``true``: triage said the task only looks (category ``look_only``) and
    the action changes something: types into a terminal, submits (Enter,
    or typed text ending in a newline) or deletes (Delete keys, delete
    commands).

A rule's ``reason`` is what a human reads in the approval queue; it may quote
``{window_title}``, ``{target_element}``, ``{injection_risk}``, ``{injection_reason}``,
``{triage_category}``, ``{triage_risk}`` and ``{typed_from_screen}``.
``checkpoint: true`` on a rule snapshots the desktop's files before a step it
matched runs, so that ``deskhand undo`` can put them back.  Rule ids starting with
``budget.``, ``default.`` or ``planner.`` are reserved.  ``network`` says
which hosts the desktop may reach through the egress proxy
(:mod:`policies.network`).  Cross-references
(region names, duplicate rule ids) are checked by :mod:`policies.build`,
which knows their lines.
"""

from __future__ import annotations

import re
import string
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from policies.detectors import DETECTORS
from policies.network import parse_host_pattern
from sandbox.actions import Action
from sandbox.keys import UnknownKeyError, parse_combo


def _action_types() -> frozenset[str]:
    union = typing.get_args(Action)[0]
    return frozenset(str(model.model_fields["type"].default) for model in typing.get_args(union))


ACTION_TYPES: frozenset[str] = _action_types()
RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")
RESERVED_ID_PREFIXES: tuple[str, ...] = ("budget.", "default.", "planner.")
# Context fields a rule's reason may quote, e.g. "Injection suspected: {injection_reason}".
REASON_FIELDS: frozenset[str] = frozenset(
    {"window_title", "injection_risk", "injection_reason", "triage_category", "triage_risk",
     "typed_from_screen", "target_element"}
)

Risk = Literal["low", "medium", "high"]
Effect = Literal["allow", "deny", "ask"]


def _as_list(value: Any) -> Any:
    # A single item may be written without brackets: `actions: click`.
    return [value] if isinstance(value, str) else value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _action_type(value: str) -> str:
    if value not in ACTION_TYPES:
        known = ", ".join(sorted(ACTION_TYPES))
        raise ValueError(f"unknown action type {value!r}; known: {known}")
    return value


def _detector(value: str) -> str:
    if value not in DETECTORS:
        raise ValueError(f"unknown detector {value!r}; known: {', '.join(DETECTORS)}")
    return value


def _combo(value: str) -> str:
    try:
        return "+".join(parse_combo(value))
    except UnknownKeyError as exc:
        raise ValueError(f"{exc} in key combination {value!r}") from None


def _reason(value: str) -> str:
    for _text, name, _spec, _conv in string.Formatter().parse(value):
        if name is not None and name not in REASON_FIELDS:
            known = ", ".join(sorted(REASON_FIELDS))
            raise ValueError(f"unknown placeholder {{{name}}} in reason; known: {known}")
    return value


def _rule_id(value: str) -> str:
    if value.startswith(RESERVED_ID_PREFIXES):
        raise ValueError(f"rule ids starting with {', '.join(RESERVED_ID_PREFIXES)} are reserved")
    return value


Pattern = Annotated[str, AfterValidator(_regex)]
ActionType = Annotated[str, AfterValidator(_action_type)]
DetectorName = Annotated[str, AfterValidator(_detector)]
Combo = Annotated[str, AfterValidator(_combo)]
ListOf = BeforeValidator(_as_list)
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Pixel = Annotated[int, Field(ge=0, le=16384)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(_Strict):
    """A named box ``[x0, y0, x1, y1)`` in screen pixels or in fractions of the screen."""

    pixels: tuple[Pixel, Pixel, Pixel, Pixel] | None = None
    fraction: tuple[Fraction, Fraction, Fraction, Fraction] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_non_empty_box(self) -> RegionSpec:
        if (self.pixels is None) == (self.fraction is None):
            raise ValueError("give exactly one of pixels or fraction")
        x0, y0, x1, y1 = self.pixels or self.fraction or (0, 0, 0, 0)
        if x1 <= x0 or y1 <= y0:
            raise ValueError("a region needs x1 > x0 and y1 > y0")
        return self


class TriageSpec(_Strict):
    """Conditions on what intent triage said about the task."""

    category: Annotated[list[str], ListOf] = Field(default_factory=list)
    risk_at_least: Risk | None = None
    confidence_at_least: Fraction = 0.0

    @model_validator(mode="after")
    def _says_something(self) -> TriageSpec:
        if not self.category and self.risk_at_least is None:
            raise ValueError("give a category, risk_at_least or both")
        return self


LineUnknownReason = Literal["history", "completion", "command_completion", "motion", "paste"]


def _line_unknown(value: Any) -> Any:
    # `line_unknown: true` means any reason; `false` is the same as leaving it out.
    if value is True:
        return list(typing.get_args(LineUnknownReason))
    if value is False:
        return None
    return _as_list(value)


class CommandSpec(_Strict):
    """A command the shell would run: its name and, optionally, options, arguments, route."""

    name: Annotated[list[Annotated[str, Field(min_length=1)]], ListOf, Field(min_length=1)]
    options_any: Annotated[list[Annotated[str, Field(pattern=r"^-")]], ListOf] = Field(
        default_factory=list)
    args_any: Annotated[list[Pattern], ListOf] = Field(default_factory=list)
    subcommand: Annotated[list[str], ListOf] = Field(default_factory=list)
    redirect_any: Annotated[list[Literal[">", ">|", ">>", "&>", "<", "<<", "<<<"]], ListOf] = (
        Field(default_factory=list))
    via_any: Annotated[list[str], ListOf] = Field(default_factory=list)


def _as_command_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class MatchSpec(_Strict):
    """Conditions of a rule; all given ones must hold (an empty match holds always)."""

    actions: Annotated[list[ActionType], ListOf] = Field(default_factory=list)
    text: Annotated[list[Pattern], ListOf] = Field(default_factory=list)
    detectors: Annotated[list[DetectorName], ListOf] = Field(default_factory=list)
    keys: Annotated[list[Combo], ListOf] = Field(default_factory=list)
    regions: Annotated[list[str], ListOf] = Field(default_factory=list)
    window_title: Pattern | None = None
    element_name: Pattern | None = None
    triage: TriageSpec | None = None
    injection_risk_at_least: Fraction | None = None
    command: Annotated[list[CommandSpec], BeforeValidator(_as_command_list)] = Field(
        default_factory=list)
    shell_obfuscation: Literal[True] | None = None
    shell_unparsed: Literal[True] | None = None
    line_unknown: Annotated[list[LineUnknownReason] | None, BeforeValidator(_line_unknown)] = None
    typed_from_screen: bool | None = None
    task_look_only: bool | None = None


class RuleSpec(_Strict):
    """One rule: when ``match`` holds (and ``unless`` does not), its effect applies."""

    id: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=80),
        AfterValidator(_rule_id),
    ]
    effect: Effect
    reason: Annotated[str, Field(min_length=1), AfterValidator(_reason)]
    secret: bool = False
    checkpoint: bool = False
    """Snapshot the desktop's files before an action this rule matched runs (undo)."""
    match: MatchSpec = Field(default_factory=MatchSpec)
    unless: MatchSpec | None = None


class BudgetSpec(_Strict):
    """Limits for one session; leaving one out means no limit."""

    max_steps: Annotated[int, Field(gt=0)] | None = None
    max_wall_time_s: Annotated[float, Field(gt=0)] | None = None
    max_actions_per_minute: Annotated[int, Field(gt=0)] | None = None
    max_typed_chars: Annotated[int, Field(gt=0)] | None = None
    max_rate_wait_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    """How long the loop may wait for ``max_actions_per_minute`` to allow an action."""


def _host_entry(value: str) -> str:
    parse_host_pattern(value)
    return value


HostEntry = Annotated[str, AfterValidator(_host_entry)]


class NetworkSpec(_Strict):
    """Which hosts the desktop may reach (see :mod:`policies.network`)."""

    mode: Literal["off", "allowlist", "full"] = "off"
    allow: Annotated[list[HostEntry], ListOf] = Field(default_factory=list)
    deny: Annotated[list[HostEntry], ListOf] = Field(default_factory=list)
    methods: Literal["all", "read_only"] = "all"


class PolicyFile(_Strict):
    """A whole policy file."""

    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1)] | None = None
    description: str = ""
    regions: dict[str, RegionSpec] = Field(default_factory=dict)
    budgets: BudgetSpec = Field(default_factory=BudgetSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    rules: Annotated[list[RuleSpec], Field(min_length=1)]
