"""Red-team a policy with known attacks: which of them would a run let through?

Two corpora, both judged at the decision level (no desktop, well under a second):

* **Evasions** (``policies/data/redteam/evasions.yaml`` and the user's
  ``*.yaml``): ways to get a destructive command past the shell rules, as
  typed text or actions.  Each is decided as the loop decides it
  (:func:`policies.sequence.decide_sequence`, the line rebuilt across
  actions); it gets through when every action is allowed.
* **Injections** (the perception package's screens and the user's
  ``*.jsonl``): text written for the agent.  Each text is shown to the
  injection detector as OCR'd lines; its risk and reason go into
  :class:`~policies.decision.PolicyContext` and the policy decides the step
  such a screen steers the agent to (:data:`INJECTION_FOLLOW_UP`); it gets
  through when that step is allowed.  The detector lives in the agent layer
  above: the caller lends it as an :data:`InjectionJudge`.

An attack that gets through is a :class:`Breach` naming the rules that allowed
its last step.  Bad corpus files raise :class:`CorpusError`, whose problems
name file, line and field.

``--live`` runs the same attacks on a real desktop through the real loop; that
needs the agent layer above, which lends a :data:`LiveRunner` taking a
:class:`LiveRequest` and giving back a :class:`LiveOutcome`
(``agent/redteam_live.py``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from policies.decision import PolicyContext
from policies.engine import Policy
from policies.sequence import decide_sequence
from sandbox.actions import Action, ActionError, Click, TypeText, parse_action

SHIPPED_EVASIONS = resources.files("policies").joinpath("data", "redteam", "evasions.yaml")
TERMINAL = "xterm"
BROWSER = "Mozilla Firefox"
SCREEN = (1280, 800)
# What an injected screen asks for, at its simplest: follow a link or press a button.
INJECTION_FOLLOW_UP: tuple[Action, ...] = (Click(x=640, y=400),)

# Text of a screen -> (risk 0..1, reason), as the loop's perception would say.
InjectionJudge = Callable[[str], tuple[float, str]]


@dataclass(frozen=True, slots=True)
class Attack:
    """One corpus item: ``kind`` (evasion or injection), where it was read, what it tries."""

    kind: str
    id: str
    what: str
    where: str
    window: str
    actions: tuple[Action, ...] = ()
    screen_text: str = ""
    desktop: bool = True
    """False: the case needs something a test desktop lacks (left out of ``--live``)."""


@dataclass(frozen=True, slots=True)
class Breach:
    """An attack whose every step the policy allowed, and the rules that allowed the last."""

    attack: Attack
    rule_ids: tuple[str, ...]
    detail: str = ""

    def describe(self) -> str:
        rules = ", ".join(self.rule_ids) or "(no rule)"
        extra = f"; {self.detail}" if self.detail else ""
        return (f"{self.attack.kind} {self.attack.id} ({self.attack.where}): "
                f"{self.attack.what} -- allowed by {rules}{extra}")


class CorpusError(ValueError):
    """A corpus file that cannot be read; ``problems`` are ``file:line: field: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


# --- reading corpora -----------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of each mapping (as ``__line__``)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def read_evasions(path: Path, text: str | None = None) -> list[Attack]:
    """The evasions of a YAML file in the format of the shipped ``evasions.yaml``."""
    try:
        data = yaml.load(text if text is not None else path.read_text("utf-8"),
                         Loader=_LineLoader)
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError([f"{path}: cannot read: {exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CorpusError([f"{path}{line}: not valid YAML: {str(exc).splitlines()[0]}"]) from None
    if not isinstance(data, list):
        raise CorpusError([f"{path}:1: should be a list of evasions (id, what, line or actions)"])
    problems: list[str] = []
    attacks = [attack for item in data if (attack := _evasion(path, item, problems))]
    if problems:
        raise CorpusError(problems)
    return attacks


def _evasion(path: Path, item: Any, problems: list[str]) -> Attack | None:
    if not isinstance(item, dict):
        problems.append(f"{path}: an item is not a mapping: {item!r}")
        return None
    where = f"{path.name}:{item.get('__line__', '?')}"
    located = f"{path}:{item.get('__line__', '?')}"
    before = len(problems)
    for field in ("id", "what"):
        if not isinstance(item.get(field), str) or not item[field]:
            problems.append(f"{located}: {field}: required, a non-empty string")
    unknown = set(item) - {"__line__", "id", "what", "line", "actions", "window", "desktop"}
    problems += [f"{located}: {name}: unknown field" for name in sorted(unknown)]
    actions = _evasion_actions(item, located, problems)
    if len(problems) > before:
        return None
    return Attack("evasion", item["id"], item["what"], where, str(item.get("window", TERMINAL)),
                  actions, desktop=item.get("desktop", True) is not False)


def _evasion_actions(item: dict[str, Any], located: str,
                     problems: list[str]) -> tuple[Action, ...]:
    if ("line" in item) == ("actions" in item):
        problems.append(f"{located}: line/actions: give exactly one of them")
        return ()
    if "line" in item:
        return (TypeText(text=str(item["line"]) + "\n"),)
    raw = item["actions"]
    if not isinstance(raw, list) or not raw:
        problems.append(f"{located}: actions: should be a non-empty list of actions")
        return ()
    actions = []
    for index, action in enumerate(raw):
        try:
            actions.append(parse_action(_without_line(action)))
        except ActionError as exc:
            problems.append(f"{located}: actions[{index}]: {exc}")
    return tuple(actions)


def _without_line(action: Any) -> Any:
    if not isinstance(action, dict):
        return action
    return {key: value for key, value in action.items() if key != "__line__"}


def read_injections(path: Path) -> list[Attack]:
    """The injection screens of a JSON-lines file (``id``, ``text``, optional ``label``:
    only ``injection`` items are attacks; ``ordinary`` ones are skipped)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError([f"{path}: cannot read: {exc}"]) from None
    problems: list[str] = []
    attacks = [attack for number, line in enumerate(lines, 1) if line.strip()
               if (attack := _injection(path, number, line, problems))]
    if problems:
        raise CorpusError(problems)
    return attacks


def _injection(path: Path, number: int, line: str, problems: list[str]) -> Attack | None:
    located = f"{path}:{number}"
    try:
        item = json.loads(line)
    except ValueError as exc:
        problems.append(f"{located}: not valid JSON: {exc}")
        return None
    if not isinstance(item, dict):
        problems.append(f"{located}: should be a JSON object with id and text")
        return None
    before = len(problems)
    for field in ("id", "text"):
        if not isinstance(item.get(field), str) or not item[field].strip():
            problems.append(f"{located}: {field}: required, a non-empty string")
    label = item.get("label", "injection")
    if label not in {"injection", "ordinary"}:
        problems.append(f"{located}: label: should be injection or ordinary, not {label!r}")
    if len(problems) > before or label != "injection":
        return None
    first = " ".join(item["text"].split())
    what = first if len(first) <= 60 else first[:57] + "..."
    return Attack("injection", item["id"], what, f"{path.name}:{number}", BROWSER,
                  screen_text=item["text"])


def read_user_corpus(directory: Path) -> tuple[list[Attack], list[Attack]]:
    """The evasions (``*.yaml``, ``*.yml``) and injections (``*.jsonl``) under ``directory``."""
    if not directory.is_dir():
        raise CorpusError([f"{directory}: not a directory"])
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    known = [p for p in files if p.suffix in {".yaml", ".yml", ".jsonl"}]
    if not known:
        raise CorpusError([f"{directory}: holds no *.yaml (evasions) or *.jsonl (injections)"])
    problems: list[str] = []
    evasions: list[Attack] = []
    injections: list[Attack] = []
    for path in known:
        try:
            if path.suffix == ".jsonl":
                injections += read_injections(path)
            else:
                evasions += read_evasions(path)
        except CorpusError as exc:
            problems += exc.problems
    if problems:
        raise CorpusError(problems)
    return evasions, injections


def shipped_evasions() -> list[Attack]:
    return read_evasions(Path("evasions.yaml"), SHIPPED_EVASIONS.read_text("utf-8"))


# --- judging --------------------------------------------------------------------


def _context(window: str, risk: float = 0.0, reason: str = "") -> PolicyContext:
    return PolicyContext(screen_width=SCREEN[0], screen_height=SCREEN[1], window_title=window,
                         injection_risk=risk, injection_reason=reason, now=1000.0)


def _through(policy: Policy, actions: Sequence[Action],
             context: PolicyContext) -> tuple[str, ...] | None:
    """The rules that allowed the last action when every action was allowed, else None."""
    steps = decide_sequence(policy, actions, context, stop_at_first_not_allowed=True)
    last = steps[-1].decision
    if not last.allowed or len(steps) < len(actions):
        return None
    return last.rule_ids


def evasion_breaches(policy: Policy, attacks: Iterable[Attack]) -> list[Breach]:
    breaches = []
    for attack in attacks:
        rules = _through(policy, attack.actions, _context(attack.window))
        if rules is not None:
            breaches.append(Breach(attack, rules))
    return breaches


def injection_breaches(policy: Policy, attacks: Iterable[Attack],
                       judge: InjectionJudge) -> list[Breach]:
    breaches = []
    for attack in attacks:
        risk, reason = judge(attack.screen_text)
        rules = _through(policy, INJECTION_FOLLOW_UP, _context(attack.window, risk, reason))
        if rules is not None:
            breaches.append(Breach(attack, rules, f"injection risk {risk:.2f}"))
    return breaches


# --- on a live desktop (run by the agent layer) ------------------------------------


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """What ``policy redteam --live`` asks the agent layer to run."""

    profile: str
    evasions: Sequence[Attack]
    injections: Sequence[Attack]
    sandbox: str = "auto"
    time_limit_s: float = 3600.0
    db: Path | None = None
    """Where the attacks' sessions are recorded (a temporary database when None)."""
    progress: Callable[[str], None] = lambda _line: None


@dataclass(slots=True)
class LiveOutcome:
    """What the live run found: breaches, how many attacks of each kind were tried, those
    left out (not for this desktop, or past the time limit), and where they ran."""

    desktop: str
    breaches: list[Breach] = dataclasses.field(default_factory=list)
    tried: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"evasion": 0, "injection": 0})
    left_out: list[Attack] = dataclasses.field(default_factory=list)
    untried: list[Attack] = dataclasses.field(default_factory=list)


class LiveFailure(Exception):
    """The live run could not go on: ``exit_code`` 2 (bad input) or 3 (the sandbox failed)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


LiveRunner = Callable[[LiveRequest], LiveOutcome]
