"""Elements on screen beyond words: what they are (role), what they are called
(name), what state they are in, and where (box in screen pixels).

Three sources give them, behind one seam (:class:`ElementSource`): the
accessibility tree (the sandbox's ``elements`` op), a vision-language model
(:mod:`agent.perception.vlm`) and OCR (:class:`TextAsElements`, role ``text``).
Scripts and suites select them as Playwright's ``getByRole`` does::

    query = ElementQuery(role="push button", name="Save")
    save = find_element(source.elements(frame), query)   # raises ElementNotFound
    x, y = save.center
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent.perception.errors import PerceptionError
from agent.perception.screen import ScreenParser, phrases
from sandbox.base import Frame

# How many near misses an ElementNotFound names.
NEAREST_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Element:
    """One widget or piece of text; ``box`` is ``(x0, y0, x1, y1)`` in screen pixels,
    x1/y1 exclusive."""

    role: str
    name: str
    box: tuple[int, int, int, int]
    states: frozenset[str] = frozenset()
    value: str = ""
    source: str = ""
    """Who saw it: ``a11y``, ``vlm`` or ``ocr``."""

    @property
    def center(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) // 2, (y0 + y1) // 2)

    def describe(self) -> str:
        states = f" [{', '.join(sorted(self.states))}]" if self.states else ""
        return f"{self.role} {self.name!r}{states} at {list(self.box)}"


@runtime_checkable
class ElementSource(Protocol):
    """Turns a frame into the elements shown on it."""

    def elements(self, frame: Frame) -> list[Element]: ...


class ElementNotFound(PerceptionError):
    """No element matched a query; the message names the nearest candidates, and ``notes``
    say why a source saw nothing (an app with no accessibility tree)."""

    def __init__(self, query: ElementQuery, nearest: Sequence[Element],
                 notes: Sequence[str] = ()) -> None:
        shown = "; ".join(e.describe() for e in nearest) or "none: the screen shows no elements"
        why = "".join(f" ({note})" for note in notes)
        super().__init__(f"no element matches {query.describe()}; nearest: {shown}{why}")
        self.query = query
        self.nearest = list(nearest)


def normalize_role(role: str) -> str:
    """``push_button``, ``Push-Button`` and ``push button`` are the same role."""
    return " ".join(re.split(r"[\s_-]+", role.strip().casefold()))


@dataclass(frozen=True, slots=True)
class ElementQuery:
    """What a step asks for: a role, a name (exact, or ``name_re`` searched), a state."""

    role: str | None = None
    name: str | None = None
    name_re: str | None = None
    state: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name is not None and self.name_re is not None:
            raise ValueError("give name or name_re, not both")
        if self.name_re is not None:
            try:
                object.__setattr__(self, "_pattern", re.compile(self.name_re))
            except re.error as exc:
                raise ValueError(f"name_re {self.name_re!r} is not a regular expression: "
                                 f"{exc}") from None

    def identifies(self, element: Element) -> bool:
        """Role and name match (the state is checked apart: a step may wait for it)."""
        if self.role is not None and normalize_role(self.role) != normalize_role(element.role):
            return False
        if self.name is not None and " ".join(self.name.split()) != " ".join(element.name.split()):
            return False
        return self._pattern is None or self._pattern.search(element.name) is not None

    def matches(self, element: Element) -> bool:
        return self.identifies(element) and self.in_state(element)

    def in_state(self, element: Element) -> bool:
        if self.state is None:
            return True
        wanted = normalize_role(self.state)
        if wanted.startswith("not "):
            return wanted[4:] not in {normalize_role(s) for s in element.states}
        return wanted in {normalize_role(s) for s in element.states}

    def describe(self) -> str:
        parts = [f"role {self.role!r}"] if self.role is not None else []
        if self.name is not None:
            parts.append(f"name {self.name!r}")
        if self.name_re is not None:
            parts.append(f"name_re {self.name_re!r}")
        if self.state is not None:
            parts.append(f"state {self.state!r}")
        return ", ".join(parts) or "any element"


def find_element(elements: Sequence[Element], query: ElementQuery) -> Element:
    """The first element (in the source's order) matching ``query``, or ElementNotFound."""
    for element in elements:
        if query.matches(element):
            return element
    raise ElementNotFound(query, nearest(elements, query))


def nearest(elements: Sequence[Element], query: ElementQuery,
            count: int = NEAREST_SHOWN) -> list[Element]:
    """The elements most like the query: same role first, then the closest names."""
    wanted_name = (query.name or query.name_re or "").casefold()

    def likeness(element: Element) -> float:
        same_role = query.role is None or normalize_role(query.role) == normalize_role(element.role)
        named = difflib.SequenceMatcher(None, wanted_name, element.name.casefold()).ratio()
        return (1.0 if same_role else 0.0) + named + (0.5 if query.identifies(element) else 0.0)

    return sorted(elements, key=likeness, reverse=True)[:count]


class TextAsElements:
    """OCR's words as elements: one ``text`` element per phrase."""

    def __init__(self, parser: ScreenParser) -> None:
        self.parser = parser

    def elements(self, frame: Frame) -> list[Element]:
        found: list[Element] = []
        for run in phrases(self.parser.parse(frame)):
            box = (min(w.x0 for w in run), min(w.y0 for w in run),
                   max(w.x1 for w in run), max(w.y1 for w in run))
            found.append(Element("text", " ".join(w.text for w in run), box, source="ocr"))
        return found


class CombinedSource:
    """Several sources' elements, in order; a source that fails is skipped with a note
    (once per run: :class:`SourceNotes`) as long as another answered (``auto``: the
    accessibility tree, then OCR)."""

    def __init__(self, *sources: ElementSource, note: NoteFn | None = None) -> None:
        self.sources = sources
        self.notes = SourceNotes.of(note)

    def elements(self, frame: Frame) -> list[Element]:
        found: list[Element] = []
        failures: list[PerceptionError] = []
        for source in self.sources:
            try:
                found.extend(source.elements(frame))
            except PerceptionError as exc:
                failures.append(exc)
                self.notes.say(source, type(exc).__name__, f"{type(source).__name__}: {exc}")
        if failures and len(failures) == len(self.sources):
            raise failures[0]
        return found


class NoteFn(Protocol):
    def __call__(self, text: str, /) -> None: ...


class SourceNotes:
    """Tells a run about its element sources' problems, each once per run.

    A problem is known by its source's class and its kind (the exception's class), not by
    its text: xterm's missing tree names the window's title, which changes with every
    command, and would otherwise be said again at nearly every step.  A run shares one
    instance among everything that reads its elements, so the click targets and the
    script's element steps say it once between them.  Callable as a plain note, so it can
    be handed on wherever a :class:`NoteFn` is taken.
    """

    def __init__(self, note: NoteFn = lambda _text: None) -> None:
        self._note = note
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, note: NoteFn | None) -> SourceNotes:
        """``note`` itself when it already is one (shared), else a new one around it."""
        return note if isinstance(note, SourceNotes) else cls(note or (lambda _text: None))

    def say(self, source: object, kind: str, text: str) -> None:
        key = (type(source).__name__, kind)
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        self._note(text)

    def __call__(self, text: str, /) -> None:
        self._note(text)


class TreeSource(Protocol):
    """What :class:`AccessibilityTree` needs of a sandbox: ``Sandbox.elements()``."""

    def elements(self) -> dict[str, Any]: ...


class A11yUnavailable(PerceptionError):
    """The sandbox reads no accessibility tree for the active window; OCR stands in."""


class AccessibilityTree:
    """The sandbox's accessibility tree as an element source (the frame only dates it:
    the tree is read live, once per frame hash)."""

    def __init__(self, sandbox: TreeSource) -> None:
        self.sandbox = sandbox
        self._last: tuple[str, list[Element]] | None = None

    def elements(self, frame: Frame) -> list[Element]:
        if self._last is not None and self._last[0] == frame.sha256:
            return list(self._last[1])
        tree = self.sandbox.elements()
        if not tree.get("available"):
            raise A11yUnavailable(f"no accessibility tree: {tree.get('reason', 'unknown')}")
        found = [Element(role=str(e["role"]), name=str(e["name"]),
                         box=(int(e["box"][0]), int(e["box"][1]), int(e["box"][2]),
                              int(e["box"][3])),
                         states=frozenset(str(s) for s in e.get("states", ())),
                         value=str(e.get("value", "")), source="a11y")
                 for e in tree.get("elements", [])]
        self._last = (frame.sha256, found)
        return list(found)


class TreeThenText:
    """Where element steps look: the accessibility tree, then OCR's phrases when the tree
    has no match (or the app exposes none) and the query could name a phrase (no role, or
    role ``text``; OCR sees nothing else, so a button query costs no OCR)."""

    def __init__(self, tree: ElementSource, text: ElementSource | None) -> None:
        self.tree = tree
        self.text = text

    def find(self, frame: Frame, query: ElementQuery) -> Element:
        """The first match, tree first; ElementNotFound naming the nearest of both."""
        seen: list[Element] = []
        notes: list[str] = []
        for source in self._sources_for(query):
            try:
                found = source.elements(frame)
            except PerceptionError as exc:
                notes.append(str(exc))
                continue
            match = next((e for e in found if query.matches(e)), None)
            if match is not None:
                return match
            seen.extend(found)
        raise ElementNotFound(query, nearest(seen, query), notes)

    def _sources_for(self, query: ElementQuery) -> list[ElementSource]:
        phrase = query.role is None or normalize_role(query.role) == "text"
        return [self.tree, *([self.text] if self.text is not None and phrase else [])]
