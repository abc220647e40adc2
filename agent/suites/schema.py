"""Read and validate suite files (``*.suite.yaml``) into typed suites, cases and steps.

The whole file is checked before any sandbox starts; every problem is
reported as ``file:line: field: what is wrong`` (a :class:`SuiteError`, exit 2).
Steps are one-key mappings: any ``deskhand run --script`` step, or one of the
suite's own (``assert_*``, ``click_text``, ``wait_for_text``, ``wait_for_window``,
``wait_for_element``; ``click: {role, name}`` clicks an element), with optional
``blocked: true`` and ``note``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agent.planners.script import SCRIPT_ACTION_KINDS, is_element_step, parse_script_action
from agent.suites import specs
from agent.suites.errors import SuiteError
from policies.errors import PolicyError, Problem
from policies.source import FieldPath, PolicySource, read_source
from sandbox.actions import Action, ActionError

SUITE_SUFFIX = ".suite.yaml"
StepKind = str


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a case: an action for the loop, or a check/grounded step the driver runs."""

    kind: StepKind
    line: int
    action: Action | None = None
    spec: specs.Spec | None = None
    blocked: bool = False
    note: str = ""

    def describe(self) -> str:
        if self.action is not None:
            return self.action.describe()
        return f"{self.kind} {_spec_summary(self.spec)}"


@dataclass(frozen=True, slots=True)
class Check:
    """One ``expect`` entry; ``any_of`` holds alternatives when the kind is ``any``."""

    kind: str
    line: int
    spec: specs.Spec | None = None
    any_of: tuple[Check, ...] = ()

    def describe(self) -> str:
        if self.kind == "any":
            return "any of: " + "; ".join(c.describe() for c in self.any_of)
        return f"{self.kind} {_spec_summary(self.spec)}"


@dataclass(frozen=True, slots=True)
class ArrangeStep:
    """A setup/teardown step: runs as the desktop user, outside the policy, recorded as an event."""

    kind: str
    line: int
    spec: specs.Spec


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: Literal["docker", "local", "auto", "fake"] | None = None
    policy: str = "default"
    timeout: float = Field(120.0, gt=0, le=7200)
    max_steps: int = Field(50, ge=1, le=10000)
    retries: int = Field(0, ge=0, le=20)
    network: Literal["off", "on"] | bool = "off"
    isolation: Literal["container", "checkpoint"] = "container"
    """``checkpoint``: one sandbox per worker, reset to its post-setup checkpoint between
    cases (agent/suites/reuse.py says what that does not reset)."""
    secrets: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                  Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=dict)
    """``NAME: ENV_VAR`` or ``NAME: file:PATH``: what ``{{secret:NAME}}`` types."""


class _CaseFields(BaseModel):
    """The scalar fields of a case, checked by pydantic (steps are parsed apart)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
    name: str = ""
    tags: list[str] = Field(default_factory=list)
    setup: list[Any] = Field(default_factory=list)
    steps: list[Any] = Field(default_factory=list)
    goal: str | None = None
    expect: list[Any] = Field(default_factory=list)
    precheck: Literal["must_fail"] | None = None
    oracle: list[Any] = Field(default_factory=list)
    infeasible: bool = False
    skip: bool | str = False
    sandbox: Literal["docker", "local", "auto", "fake"] | None = None
    policy: str | None = None
    timeout: float | None = Field(None, gt=0, le=7200)
    max_steps: int | None = Field(None, ge=1, le=10000)
    retries: int | None = Field(None, ge=0, le=20)
    network: Literal["off", "on"] | bool | None = None
    isolation: Literal["container", "checkpoint"] | None = None
    difficulty: Literal["easy", "medium", "hard"] | None = None


class _SuiteFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str = Field(min_length=1)
    defaults: Defaults = Field(default_factory=Defaults)
    setup: list[Any] = Field(default_factory=list)
    teardown: list[Any] = Field(default_factory=list)
    cases: list[Any] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Case:
    """One case of a suite, with the suite's defaults already applied."""

    id: str
    name: str
    line: int
    tags: tuple[str, ...]
    setup: tuple[ArrangeStep, ...]
    steps: tuple[Step, ...]
    goal: str | None
    expect: tuple[Check, ...]
    precheck: Literal["must_fail"] | None
    oracle: tuple[Step, ...]
    infeasible: bool
    skip: str
    sandbox: str | None
    policy: str
    timeout_s: float
    max_steps: int
    retries: int
    network: bool
    suite: Suite = field(repr=False, compare=False)
    secrets: tuple[tuple[str, str], ...] = ()
    isolation: str = "container"
    """``container`` (a fresh sandbox per attempt) or ``checkpoint`` (see agent/suites/reuse.py)."""
    """``(NAME, SOURCE)`` pairs from the suite's defaults (names and sources, never values)."""

    @property
    def key(self) -> str:
        """Stable across runs: the suite file and the case id."""
        return f"{self.suite.path}::{self.id}"


@dataclass(slots=True)
class Suite:
    name: str
    path: Path
    setup: tuple[ArrangeStep, ...]
    teardown: tuple[ArrangeStep, ...]
    cases: list[Case] = field(default_factory=list)


# -- discovery ---------------------------------------------------------------------------


def discover(paths: Sequence[Path]) -> list[Path]:
    """Suite files named by ``paths``: files as given, folders searched for ``*.suite.yaml``."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob(f"*{SUITE_SUFFIX}")))
        elif path.is_file():
            found.append(path)
        else:
            raise SuiteError.single(str(path), None, "", "no such file or folder")
    if not found:
        raise SuiteError.single(", ".join(map(str, paths)), None, "",
                                f"no {SUITE_SUFFIX} files found")
    return found


def load_suites(paths: Sequence[Path]) -> list[Suite]:
    """Every suite under ``paths``, all validated; one SuiteError lists every problem."""
    suites: list[Suite] = []
    problems: list[Problem] = []
    for path in discover(paths):
        try:
            suites.append(load_suite(path))
        except SuiteError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SuiteError(problems)
    return suites


def load_suite(path: Path) -> Suite:
    """Load one suite file, raising :class:`SuiteError` with every problem found."""
    source = _read(path)
    try:
        fields = _SuiteFields.model_validate(source.data)
    except ValidationError as exc:
        raise _translated(source, exc) from None
    parser = _Parser(source, path)
    suite = Suite(name=fields.suite, path=path,
                  setup=parser.arrange(fields.setup, ("setup",)),
                  teardown=parser.arrange(fields.teardown, ("teardown",)))
    suite.cases = [c for i, raw in enumerate(fields.cases)
                   if (c := parser.case(suite, fields.defaults, raw, i)) is not None]
    parser.check_unique_ids(suite.cases)
    if parser.problems:
        raise SuiteError(parser.problems)
    return suite


def _read(path: Path) -> PolicySource:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError.single(str(path), None, "", f"cannot read: {exc.strerror}") from None
    if not raw.strip():
        raise SuiteError.single(str(path), 1, "", "the suite file is empty")
    try:
        source = read_source(raw, str(path))
    except PolicyError as exc:
        raise SuiteError(exc.problems) from None
    return source


def _translated(source: PolicySource, exc: ValidationError) -> SuiteError:
    return SuiteError(source.translate(exc).problems)


# -- steps ---------------------------------------------------------------------------------


class _Parser:
    """Turns the raw step lists of one file into typed steps, collecting problems."""

    def __init__(self, source: PolicySource, path: Path) -> None:
        self.source = source
        self.folder = path.parent
        self.problems: list[Problem] = []

    def problem(self, at: FieldPath, message: str) -> None:
        self.problems.append(self.source.problem(at, message))

    def case(self, suite: Suite, defaults: Defaults, raw: Any, index: int) -> Case | None:
        at: FieldPath = ("cases", index)
        try:
            data = _CaseFields.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                self.problem((*at, *error["loc"]), error["msg"].removeprefix("Value error, "))
            return None
        steps = self.steps(data.steps, (*at, "steps"))
        if not data.steps and data.goal is None:
            self.problem(at, "a case needs steps or a goal")
        if data.precheck == "must_fail" and not data.expect:
            self.problem((*at, "precheck"), "precheck: must_fail needs expect checks to run")
        return Case(
            id=data.id, name=data.name or data.id, line=self.source.line_of(at),
            tags=tuple(data.tags), setup=self.arrange(data.setup, (*at, "setup")), steps=steps,
            goal=data.goal, expect=self.checks(data.expect, (*at, "expect")),
            precheck=data.precheck, oracle=self.steps(data.oracle, (*at, "oracle")),
            infeasible=data.infeasible, skip=_skip_reason(data.skip),
            sandbox=data.sandbox or defaults.sandbox,
            policy=self.policy_path(data.policy or defaults.policy),
            timeout_s=data.timeout or defaults.timeout,
            max_steps=data.max_steps or defaults.max_steps,
            retries=defaults.retries if data.retries is None else data.retries,
            network=_network(defaults.network if data.network is None else data.network),
            suite=suite, secrets=tuple(sorted(defaults.secrets.items())),
            isolation=data.isolation or defaults.isolation)

    def policy_path(self, name: str) -> str:
        """A profile name as is; a policy file relative to the suite file's folder."""
        if name.endswith((".yaml", ".yml")) and not Path(name).is_absolute():
            return str(self.folder / name)
        return name

    def check_unique_ids(self, cases: Iterable[Case]) -> None:
        seen: dict[str, int] = {}
        for case in cases:
            if case.id in seen:
                self.problems.append(Problem(self.source.file, case.line, "id",
                                             f"duplicate case id {case.id!r} (first at line "
                                             f"{seen[case.id]})"))
            seen.setdefault(case.id, case.line)

    def steps(self, raw: list[Any], at: FieldPath) -> tuple[Step, ...]:
        return tuple(s for i, item in enumerate(raw) if (s := self.step(item, (*at, i)))
                     is not None)

    def step(self, raw: Any, at: FieldPath) -> Step | None:
        entry = self._one_key(raw, at, sorted({*SCRIPT_ACTION_KINDS, *specs.ASSERT_KINDS,
                                               *specs.TEXT_STEP_KINDS}), {"blocked", "note"})
        if entry is None:
            return None
        kind, value, extras = entry
        line = self.source.line_of(at)
        blocked, note = extras.get("blocked", False), str(extras.get("note") or "")
        if not isinstance(blocked, bool):
            self.problem((*at, "blocked"), "expected true or false")
            return None
        if is_element_step(kind, value):
            kind = specs.CLICK_ELEMENT if kind == "click" else kind
        model = specs.ASSERT_KINDS.get(kind) or specs.TEXT_STEP_KINDS.get(kind) or (
            specs.ElementSpec if kind == specs.CLICK_ELEMENT else None)
        if model is not None and blocked and kind not in {"click_text", specs.CLICK_ELEMENT}:
            self.problem((*at, "blocked"), f"only actions can be blocked, not {kind}")
            return None
        if model is not None:
            spec = self.spec(model, value, (*at, kind))
            return None if spec is None else Step(kind, line, spec=spec, blocked=blocked,
                                                  note=note)
        try:
            action = parse_script_action(kind, value)
        except (ValueError, TypeError, ActionError) as exc:
            self.problem((*at, kind), str(exc).splitlines()[0])
            return None
        return Step(kind, line, action=action, blocked=blocked, note=note)

    def arrange(self, raw: list[Any], at: FieldPath) -> tuple[ArrangeStep, ...]:
        out: list[ArrangeStep] = []
        for i, item in enumerate(raw):
            entry = self._one_key(item, (*at, i), sorted(specs.ARRANGE_KINDS), set())
            if entry is None:
                continue
            kind, value, _ = entry
            spec = self.spec(specs.ARRANGE_KINDS[kind], value, (*at, i, kind))
            if spec is not None:
                out.append(ArrangeStep(kind, self.source.line_of((*at, i)), spec))
        return tuple(out)

    def checks(self, raw: list[Any], at: FieldPath) -> tuple[Check, ...]:
        out: list[Check] = []
        for i, item in enumerate(raw):
            check = self.check(item, (*at, i))
            if check is not None:
                out.append(check)
        return tuple(out)

    def check(self, raw: Any, at: FieldPath) -> Check | None:
        entry = self._one_key(raw, at, sorted({*specs.EXPECT_KINDS, "any"}), set())
        if entry is None:
            return None
        kind, value, _ = entry
        line = self.source.line_of(at)
        if kind == "any":
            if not isinstance(value, list) or not value:
                self.problem((*at, "any"), "expected a non-empty list of checks")
                return None
            return Check("any", line, any_of=self.checks(value, (*at, "any")))
        spec = self.spec(specs.EXPECT_KINDS[kind], value, (*at, kind))
        return None if spec is None else Check(kind, line, spec=spec)

    def spec(self, model: type[specs._Spec], value: Any, at: FieldPath) -> specs.Spec | None:
        try:
            spec = model.model_validate(specs.spec_input(model, value))
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(p for p in error["loc"] if p != "[key]")
                self.problem((*at, *loc), error["msg"].removeprefix("Value error, "))
            return None
        if isinstance(spec, specs.ImageSpec):
            return self._with_reference(spec, at)
        return spec  # type: ignore[return-value]

    def _with_reference(self, spec: specs.ImageSpec, at: FieldPath) -> specs.ImageSpec | None:
        reference = spec.reference if spec.reference.is_absolute() \
            else self.folder / spec.reference
        if not reference.is_file():
            self.problem((*at, "reference"), f"reference image {reference} does not exist")
            return None
        return spec.model_copy(update={"reference": reference})

    def _one_key(self, raw: Any, at: FieldPath, kinds: list[str],
                 modifiers: set[str]) -> tuple[str, Any, dict[str, Any]] | None:
        data = {raw: None} if isinstance(raw, str) else raw
        if not isinstance(data, dict):
            self.problem(at, f"expected a one-key mapping such as '{kinds[0]}: ...'")
            return None
        extras = {k: v for k, v in data.items() if k in modifiers}
        rest = [k for k in data if k not in modifiers]
        if len(rest) != 1 or rest[0] not in kinds:
            unknown = [k for k in rest if k not in kinds]
            what = (f"unknown step {unknown[0]!r}" if unknown
                    else f"expected exactly one step kind, got {sorted(rest)}")
            self.problem((*at, unknown[0]) if unknown else at,
                         f"{what}; choose one of: {', '.join(kinds)}")
            return None
        return rest[0], data[rest[0]], extras


def _skip_reason(skip: bool | str) -> str:
    if skip is True:
        return "skipped in the suite file"
    return skip or ""


def _network(value: bool | str) -> bool:
    return value is True or value == "on"


def _spec_summary(spec: specs.Spec | None) -> str:
    if spec is None:
        return ""
    fields = spec.model_dump(exclude_defaults=True, mode="json")
    return ", ".join(f"{k}={v!r}" for k, v in fields.items())
