"""The conditions a rule can test, compiled once when a policy loads.

Each condition answers two questions about a :class:`Probe` (one action in
its context): :meth:`~Condition.test` — does it hold? — on the fast path of
every decision, and :meth:`~Condition.why` — a sentence saying why or why
not — for explanations.  Sentences never repeat typed text, which may be a
secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from policies.decision import PolicyContext
from policies.detectors import DETECTORS
from policies.schema import RISK_LEVELS
from policies.shell import ShellAnalysis, analyze
from sandbox.actions import Action, Click, HoldKey, Key, MouseDown, MouseUp, TypeText
from sandbox.secrets import without_placeholders


class Probe:
    """One action in its context, with the facts rules ask about worked out once."""

    __slots__ = ("_points", "_secrets", "_shell", "action", "context", "pressed", "text")

    def __init__(self, action: Action, context: PolicyContext) -> None:
        self.action = action
        self.context = context
        # Pasted text is judged like typed text.
        self.text: str | None = (action.text if isinstance(action, TypeText)
                                 else context.pasted_text)
        self.pressed: frozenset[str] | None = (
            frozenset(action.keys) if isinstance(action, Key | HoldKey) else None
        )
        self._points: list[tuple[int, int]] | None = None
        self._secrets: dict[str, bool] = {}
        self._shell: tuple[ShellAnalysis | None, ShellAnalysis | None] | None = None

    @property
    def texts(self) -> tuple[str, ...]:
        """The action's own text and the whole line it submits, for text patterns."""
        line = self.context.submitted_line
        return tuple(t for t in (self.text, line) if t)

    def shell(self) -> tuple[ShellAnalysis | None, ShellAnalysis | None]:
        """The parsed text of this action and of the line it submits (``None``: no such text)."""
        if self._shell is None:
            line = self.context.submitted_line
            if line is None and self.text is not None and "\n" in self.text:
                line = self.text  # nobody rebuilt the line: the text submits itself
            self._shell = (analyze(self.text) if self.text else None,
                           analyze(line) if line and line.strip() else None)
        return self._shell

    @property
    def points(self) -> list[tuple[int, int]]:
        """Every screen point the action touches; the pointer's, for pointer-located clicks."""
        if self._points is None:
            self._points = [(p.x, p.y) for p in self.action.points()]
            if not self._points and _acts_at_pointer(self.action) and self.context.cursor:
                self._points = [self.context.cursor]
        return self._points

    def looks_like(self, detector: str) -> bool:
        """Whether the typed text looks like ``detector``'s kind of secret (cached)."""
        found = self._secrets.get(detector)
        if found is None:
            # A placeholder names a secret the run already holds; only literal
            # text can be a new secret typed into the desktop.
            found = self.text is not None and DETECTORS[detector].found_in(
                without_placeholders(self.text))
            self._secrets[detector] = found
        return found


def _acts_at_pointer(action: Action) -> bool:
    if isinstance(action, Click):
        return action.x is None
    return isinstance(action, MouseDown | MouseUp)


class Condition(Protocol):
    """Something a rule requires of an action and its context."""

    def test(self, probe: Probe) -> bool:
        """Whether the condition holds."""
        ...

    def why(self, probe: Probe) -> str:
        """A sentence saying whether it holds, and why."""
        ...


def _listed(items: Iterable[str]) -> str:
    return ", ".join(items)


@dataclass(frozen=True, slots=True)
class ActionIs:
    types: frozenset[str]

    def test(self, probe: Probe) -> bool:
        return probe.action.type in self.types

    def why(self, probe: Probe) -> str:
        verb = "is" if self.test(probe) else "is not"
        return f"action {probe.action.type!r} {verb} one of: {_listed(sorted(self.types))}"


@dataclass(frozen=True, slots=True)
class TextMatches:
    patterns: tuple[re.Pattern[str], ...]

    def test(self, probe: Probe) -> bool:
        return any(p.search(text) for text in probe.texts for p in self.patterns)

    def why(self, probe: Probe) -> str:
        texts = probe.texts
        if not texts:
            return "no typed text and no submitted line"
        for text, what in zip(texts, _text_names(probe), strict=False):
            for pattern in self.patterns:
                if pattern.search(text):
                    return f"{what} matches /{pattern.pattern}/"
        return f"typed text and submitted line match none of {len(self.patterns)} pattern(s)"


def _text_names(probe: Probe) -> list[str]:
    names = ["typed text"] if probe.text else []
    return [*names, "submitted line"]


@dataclass(frozen=True, slots=True)
class TextLooksSecret:
    detectors: tuple[str, ...]

    def test(self, probe: Probe) -> bool:
        return probe.text is not None and any(probe.looks_like(d) for d in self.detectors)

    def why(self, probe: Probe) -> str:
        if probe.text is None:
            return "no typed text (not a type action)"
        found = [d for d in self.detectors if probe.looks_like(d)]
        if found:
            kinds = _listed(DETECTORS[d].description for d in found)
            return f"typed text looks like {kinds} (detector {_listed(found)})"
        return f"typed text looks like none of: {_listed(self.detectors)}"


@dataclass(frozen=True, slots=True)
class KeysPressed:
    """Holds when the action holds down every key of one combo (extra keys or not)."""

    combos: tuple[frozenset[str], ...]
    spelled: tuple[str, ...]

    def test(self, probe: Probe) -> bool:
        pressed = probe.pressed
        return pressed is not None and any(combo <= pressed for combo in self.combos)

    def why(self, probe: Probe) -> str:
        if probe.pressed is None:
            return "no keys pressed (not a key or hold_key action)"
        held = "+".join(getattr(probe.action, "keys", []))
        for combo, spelled in zip(self.combos, self.spelled, strict=True):
            if combo <= probe.pressed:
                return f"keys {held} include {spelled}"
        return f"keys {held} include none of: {_listed(self.spelled)}"


@dataclass(frozen=True, slots=True)
class Region:
    """A named box ``[x0, x1) x [y0, y1)`` in pixels, or in fractions of the screen."""

    name: str
    box: tuple[float, float, float, float]
    fractional: bool

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        if not self.fractional:
            x0, y0, x1, y1 = self.box
            return int(x0), int(y0), int(x1), int(y1)
        x0, y0, x1, y1 = self.box
        # Round outwards: a region never shrinks below what its author drew.
        return (math.floor(x0 * width), math.floor(y0 * height),
                math.ceil(x1 * width), math.ceil(y1 * height))

    def contains(self, point: tuple[int, int], width: int, height: int) -> bool:
        x0, y0, x1, y1 = self.pixels(width, height)
        return x0 <= point[0] < x1 and y0 <= point[1] < y1


@dataclass(frozen=True, slots=True)
class PointIn:
    regions: tuple[Region, ...]

    def test(self, probe: Probe) -> bool:
        return self._first_inside(probe) is not None

    def why(self, probe: Probe) -> str:
        if not probe.points:
            return "the action touches no known screen point"
        inside = self._first_inside(probe)
        if inside is not None:
            (x, y), region = inside
            return f"point ({x}, {y}) is in region {region}"
        names = _listed(r.name for r in self.regions)
        return f"no point of the action is in region(s): {names}"

    def _first_inside(self, probe: Probe) -> tuple[tuple[int, int], str] | None:
        width, height = probe.context.screen_width, probe.context.screen_height
        for point in probe.points:
            for region in self.regions:
                if region.contains(point, width, height):
                    return point, region.name
        return None


@dataclass(frozen=True, slots=True)
class WindowTitleMatches:
    pattern: re.Pattern[str]

    def test(self, probe: Probe) -> bool:
        return self.pattern.search(probe.context.window_title) is not None

    def why(self, probe: Probe) -> str:
        verb = "matches" if self.test(probe) else "does not match"
        return f"window title {probe.context.window_title!r} {verb} /{self.pattern.pattern}/"


@dataclass(frozen=True, slots=True)
class ElementNameMatches:
    pattern: re.Pattern[str]

    def test(self, probe: Probe) -> bool:
        target = probe.context.target_element
        return target is not None and self.pattern.search(target.name) is not None

    def why(self, probe: Probe) -> str:
        target = probe.context.target_element
        if target is None:
            return "the action aims at no named element"
        verb = "matches" if self.test(probe) else "does not match"
        pattern = " ".join(self.pattern.pattern.split())  # a verbose (?x) pattern on one line
        return f"target {target.describe()} {verb} /{pattern}/"


@dataclass(frozen=True, slots=True)
class TriageSays:
    """Holds when triage ran and its category, risk and confidence all qualify."""

    categories: frozenset[str]
    min_risk: str | None
    min_confidence: float

    def test(self, probe: Probe) -> bool:
        triage = probe.context.triage
        if triage is None or triage.confidence < self.min_confidence:
            return False
        if self.categories and triage.category.lower() not in self.categories:
            return False
        return self.min_risk is None or RISK_LEVELS.index(triage.risk) >= RISK_LEVELS.index(
            self.min_risk
        )

    def why(self, probe: Probe) -> str:
        triage = probe.context.triage
        if triage is None:
            return "no triage result for this task"
        said = f"triage says {triage.category}/{triage.risk} ({triage.confidence:.2f})"
        wanted = self._wanted()
        return f"{said}, which {'meets' if self.test(probe) else 'does not meet'} {wanted}"

    def _wanted(self) -> str:
        parts = []
        if self.categories:
            parts.append(f"category in [{_listed(sorted(self.categories))}]")
        if self.min_risk is not None:
            parts.append(f"risk >= {self.min_risk}")
        if self.min_confidence:
            parts.append(f"confidence >= {self.min_confidence:.2f}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class InjectionRiskAtLeast:
    threshold: float

    def test(self, probe: Probe) -> bool:
        return probe.context.injection_risk >= self.threshold

    def why(self, probe: Probe) -> str:
        risk = probe.context.injection_risk
        sign = ">=" if self.test(probe) else "<"
        return f"injection risk {risk:.2f} {sign} {self.threshold:.2f}"


@dataclass(frozen=True, slots=True)
class Unless:
    """Holds unless every one of ``conditions`` holds (a rule's exception)."""

    conditions: tuple[Condition, ...]

    def test(self, probe: Probe) -> bool:
        return not all(c.test(probe) for c in self.conditions)

    def why(self, probe: Probe) -> str:
        reasons = "; ".join(c.why(probe) for c in self.conditions)
        applies = "applies" if not self.test(probe) else "does not apply"
        return f"exception {applies} ({reasons})"
