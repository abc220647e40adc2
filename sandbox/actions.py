"""The actions an agent may ask the sandbox to perform.

One pydantic model per action, one discriminated union (:data:`Action`) on the
``type`` field, one JSON adapter (:data:`ACTION_ADAPTER`).  The same objects
are produced by every planner, read by the policy engine, run by the executor
and stored in the audit log.

Coordinates are always sandbox pixels.  Planner adapters translate from their
model's dialect and coordinate space (see ``agent/wire_actions.py``).

Structural limits (text length, wait time, key names) are enforced when a
model is built; limits that depend on the screen are checked by
:func:`validate_for_screen`.  Both raise :class:`ActionError`, whose message
goes back to the planner verbatim.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from sandbox.keys import UnknownKeyError, normalize_key

MAX_TEXT_CHARS = 4000
MAX_WAIT_SECONDS = 30.0
MAX_HOLD_SECONDS = 10.0
MAX_SCROLL_NOTCHES = 50
MAX_KEY_REPEAT = 50
MAX_DRAG_POINTS = 200

MouseButton = Literal["left", "right", "middle", "back", "forward"]
Coordinate = Annotated[int, Field(ge=0, le=16384)]


class ActionError(ValueError):
    """An action that must not run; the message is meant for the planner."""


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: Coordinate
    y: Coordinate


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def points(self) -> list[Point]:
        """Every screen point this action touches, for bounds checks and policy regions."""
        return []

    def describe(self) -> str:
        """A short human sentence for logs, prompts and the approval queue."""
        return self.type  # type: ignore[attr-defined, no-any-return]


def _canonical_keys(keys: list[str]) -> list[str]:
    try:
        return [normalize_key(k) for k in keys]
    except UnknownKeyError as exc:
        raise ValueError(str(exc)) from exc


class Screenshot(_Action):
    type: Literal["screenshot"] = "screenshot"


class CursorPosition(_Action):
    type: Literal["cursor_position"] = "cursor_position"


class Wait(_Action):
    type: Literal["wait"] = "wait"
    seconds: float = Field(default=1.0, ge=0, le=MAX_WAIT_SECONDS)

    def describe(self) -> str:
        return f"wait {self.seconds:g}s"


class Key(_Action):
    """Press a key combination (all keys down in order, then up in reverse)."""

    type: Literal["key"] = "key"
    keys: list[str] = Field(min_length=1, max_length=6)
    repeat: int = Field(default=1, ge=1, le=MAX_KEY_REPEAT)

    _canon = field_validator("keys")(_canonical_keys)

    @property
    def combo(self) -> str:
        return "+".join(self.keys)

    def describe(self) -> str:
        suffix = f" x{self.repeat}" if self.repeat > 1 else ""
        return f"key {self.combo}{suffix}"


class HoldKey(_Action):
    type: Literal["hold_key"] = "hold_key"
    keys: list[str] = Field(min_length=1, max_length=6)
    seconds: float = Field(gt=0, le=MAX_HOLD_SECONDS)

    _canon = field_validator("keys")(_canonical_keys)

    def describe(self) -> str:
        return f"hold {'+'.join(self.keys)} for {self.seconds:g}s"


class TypeText(_Action):
    """Type text exactly as given, any Unicode character included."""

    type: Literal["type"] = "type"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)

    @field_validator("text")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value

    def describe(self) -> str:
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"type {shown!r}"


class MouseMove(_Action):
    type: Literal["mouse_move"] = "mouse_move"
    x: Coordinate
    y: Coordinate

    def points(self) -> list[Point]:
        return [Point(x=self.x, y=self.y)]

    def describe(self) -> str:
        return f"move to ({self.x}, {self.y})"


class Click(_Action):
    """Click ``count`` times; without coordinates, click where the pointer is."""

    type: Literal["click"] = "click"
    x: Coordinate | None = None
    y: Coordinate | None = None
    button: MouseButton = "left"
    count: int = Field(default=1, ge=1, le=3)
    modifiers: list[str] = Field(default_factory=list, max_length=4)

    _canon = field_validator("modifiers")(_canonical_keys)

    @model_validator(mode="after")
    def _both_or_neither(self) -> Click:
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y, or neither")
        return self

    def points(self) -> list[Point]:
        if self.x is None or self.y is None:
            return []
        return [Point(x=self.x, y=self.y)]

    def describe(self) -> str:
        times = {1: "click", 2: "double-click", 3: "triple-click"}[self.count]
        where = "" if self.x is None else f" at ({self.x}, {self.y})"
        mods = "+".join(self.modifiers) + "+" if self.modifiers else ""
        button = "" if self.button == "left" else f"{self.button} "
        return f"{mods}{button}{times}{where}"


class MouseDown(_Action):
    type: Literal["mouse_down"] = "mouse_down"
    button: MouseButton = "left"


class MouseUp(_Action):
    type: Literal["mouse_up"] = "mouse_up"
    button: MouseButton = "left"


class Drag(_Action):
    """Press ``button`` at the first point, move through the rest, release at the last."""

    type: Literal["drag"] = "drag"
    path: list[Point] = Field(min_length=2, max_length=MAX_DRAG_POINTS)
    button: MouseButton = "left"

    def points(self) -> list[Point]:
        return list(self.path)

    def describe(self) -> str:
        a, b = self.path[0], self.path[-1]
        return f"drag ({a.x}, {a.y}) -> ({b.x}, {b.y})"


class Scroll(_Action):
    """Scroll at a point by wheel notches: positive ``dy`` scrolls down, ``dx`` right."""

    type: Literal["scroll"] = "scroll"
    x: Coordinate
    y: Coordinate
    dx: int = Field(default=0, ge=-MAX_SCROLL_NOTCHES, le=MAX_SCROLL_NOTCHES)
    dy: int = Field(default=0, ge=-MAX_SCROLL_NOTCHES, le=MAX_SCROLL_NOTCHES)
    modifiers: list[str] = Field(default_factory=list, max_length=4)

    _canon = field_validator("modifiers")(_canonical_keys)

    def points(self) -> list[Point]:
        return [Point(x=self.x, y=self.y)]

    def describe(self) -> str:
        return f"scroll dx={self.dx} dy={self.dy} at ({self.x}, {self.y})"


class Zoom(_Action):
    """Return the region ``[x0, x1) x [y0, y1)`` at full resolution."""

    type: Literal["zoom"] = "zoom"
    x0: Coordinate
    y0: Coordinate
    x1: Coordinate
    y1: Coordinate

    @field_validator("y1")
    @classmethod
    def _non_empty(cls, y1: int, info: Any) -> int:
        data = info.data
        if "x0" in data and "x1" in data and data["x1"] <= data["x0"]:
            raise ValueError("zoom region must have x1 > x0")
        if "y0" in data and y1 <= data["y0"]:
            raise ValueError("zoom region must have y1 > y0")
        return y1

    def points(self) -> list[Point]:
        return [Point(x=self.x0, y=self.y0), Point(x=self.x1 - 1, y=self.y1 - 1)]

    def describe(self) -> str:
        return f"zoom ({self.x0}, {self.y0})-({self.x1}, {self.y1})"


Action = Annotated[
    Screenshot
    | CursorPosition
    | Wait
    | Key
    | HoldKey
    | TypeText
    | MouseMove
    | Click
    | MouseDown
    | MouseUp
    | Drag
    | Scroll
    | Zoom,
    Field(discriminator="type"),
]

ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)

# Actions that only observe; they never change the sandbox.
OBSERVING_TYPES: frozenset[str] = frozenset({"screenshot", "cursor_position", "zoom", "wait"})


def parse_action(data: Any) -> Action:
    """Build an action from JSON-like data, raising :class:`ActionError` with a readable reason."""
    try:
        return ACTION_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ActionError(explain_invalid(exc)) from None


def parse_action_json(text: str | bytes) -> Action:
    try:
        return ACTION_ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise ActionError(explain_invalid(exc)) from None


def action_to_dict(action: Action) -> dict[str, Any]:
    return action.model_dump(mode="json")


def validate_for_screen(action: Action, width: int, height: int) -> None:
    """Reject an action that points outside a ``width`` x ``height`` screen."""
    for point in action.points():
        if point.x >= width or point.y >= height:
            raise ActionError(
                f"{action.type}: point ({point.x}, {point.y}) is outside the "
                f"{width}x{height} screen"
            )


def explain_invalid(exc: ValidationError) -> str:
    """A validation failure in words meant for the planner."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "action"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "invalid action: " + "; ".join(parts)
