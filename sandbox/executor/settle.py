"""Settling: after an action, wait until the screen reacted and stopped changing.

The settle defaults are defined here once: the executor applies them to any
field a request leaves out, and the host (``sandbox/channel.py``) sends them.
This module imports only the standard library at import time, so the host can
read the defaults without loading the executor's X and imaging libraries.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .wire import Deadline, RequestError, is_number

if TYPE_CHECKING:
    from .capture import Capture, Screen
    from .changes import ScreenChanges

ENCODE_RESERVE_S = 0.040  # time kept back from the deadline to encode the final frame

OBSERVING = frozenset({"screenshot", "cursor_position", "zoom", "wait"})
"""Actions that only look: nothing to settle after them."""

KEY_ACTIONS = frozenset({"key", "type", "hold_key"})


@dataclass(frozen=True, slots=True)
class SettleDefaults:
    """A settle profile: how long the executor waits for the screen after an action (ms).

    ``change_timeout_ms`` bounds the wait for any visible effect (some actions
    have none); key actions get ``key_change_timeout_ms`` and pointer moves
    ``move_change_timeout_ms``.  The screen must then stay put for a quiet
    window that adapts to how fast it reacted: twice the reaction time, at least
    ``min_stable_ms`` and at most ``stable_ms``; and settling goes on until
    ``phase_ms`` after the first change, to catch an app that shows feedback at
    once and finishes drawing later.  ``max_ms`` caps it all.

    ``SettleDefaults()`` holds the protocol's defaults (what the executor uses
    for a field the request leaves out); :data:`PROFILES` the named profiles.
    """

    name: str = "default"
    change_timeout_ms: int = 1000
    key_change_timeout_ms: int = 1000
    move_change_timeout_ms: int = 150
    stable_ms: int = 60
    min_stable_ms: int = 12
    phase_ms: int = 0
    max_ms: int = 3000

    def change_timeout_for(self, action_type: str) -> int:
        if action_type == "mouse_move":
            return self.move_change_timeout_ms
        return self.key_change_timeout_ms if action_type in KEY_ACTIONS else \
            self.change_timeout_ms

    def args_for(self, action_type: str, *, enabled: bool = True) -> dict[str, Any]:
        """The ``settle`` object of an ``execute`` request for ``action_type``."""
        return {"enabled": enabled and action_type not in OBSERVING,
                "change_timeout_ms": self.change_timeout_for(action_type),
                "stable_ms": self.stable_ms, "min_stable_ms": self.min_stable_ms,
                "phase_ms": self.phase_ms, "max_ms": self.max_ms}


DEFAULTS = SettleDefaults()

FAST = SettleDefaults(name="fast", change_timeout_ms=250, key_change_timeout_ms=1000,
                      move_change_timeout_ms=100, stable_ms=60, min_stable_ms=12, phase_ms=0,
                      max_ms=3000)
"""For scripts and test suites: every action returns as soon as the screen is quiet; an app
that reacts later than the change timeout, or draws in two phases, is caught by the next
step (assertions wait for what they expect anyway).  A click, scroll or move that changes
nothing costs its short change timeout; keys keep today's second, since a shortcut often
starts an app that takes that long to show."""

MODEL = SettleDefaults(name="model", change_timeout_ms=1200, key_change_timeout_ms=1200,
                       move_change_timeout_ms=300, stable_ms=250, min_stable_ms=150,
                       phase_ms=1000, max_ms=4000)
"""For model planners, whose seconds per turn hide a longer wait: waits for an app that
reacts late, and after the first change watches for a second phase up to a second later."""

PROFILES = {profile.name: profile for profile in (FAST, MODEL)}


@dataclass
class Settled:
    capture: Capture
    png: Future[bytes] | None  # the capture's PNG, when settling already started encoding it
    changed: bool
    stable: bool
    reaction_s: float | None = None  # from the start of settling to the first change seen

    def encoded(self, screen: Screen) -> bytes:
        if self.png is None:
            return screen.png(self.capture)
        png = self.png.result()
        screen.remember(self.capture, png)
        return png


@dataclass(frozen=True)
class SettleParams:
    enabled: bool
    change_timeout_s: float
    stable_s: float
    max_s: float
    min_stable_s: float = 0.012
    phase_s: float = 0.0

    def quiet_window(self, reaction_s: float) -> float:
        """How long the screen must stay put, given how long it took to react.

        An app that reacted at once (a terminal echoing a key) finishes drawing
        at once too; one that took long (a window opening) may paint in stages,
        so it gets the full ``stable_s``.
        """
        return min(self.stable_s, max(self.min_stable_s, 2 * reaction_s))


# Before a spare keycode is re-mapped, typing waits for the app to draw what it
# has; a fixed window, since a half-drawn screen here means a wrong character.
CATCH_UP = SettleParams(enabled=True, change_timeout_s=0.25, stable_s=0.03, max_s=1.0,
                        min_stable_s=0.03)


def settle(changes: ScreenChanges, before: Capture, params: SettleParams,
           deadline: Deadline) -> Settled:
    """Wait for the screen to react to an action, then to stop changing.

    First wait (up to the change timeout) for a frame that differs from
    ``before``; then until no change but a caret's blink was drawn for the quiet
    window, and at least ``phase_s`` after that first change.  The frame
    returned is the first of the quiet run, so it never predates an effect that
    was seen.  The whole wait is capped by ``max_s`` and the deadline.
    """
    start = time.monotonic()
    limit = start + max(0.0, min(params.max_s, deadline.remaining() - ENCODE_RESERVE_S))
    first = _first_change(changes, before, min(start + params.change_timeout_s, limit))
    if first is None:
        grab = changes.screen.grab()  # nothing was drawn: this equals before, or nearly
        return Settled(grab, None, changed=grab.raw != before.raw, stable=grab.at < limit)
    reaction = first.at - start
    settled = _wait_until_quiet(changes, first, params.quiet_window(reaction),
                                first.at + params.phase_s, limit)
    settled.reaction_s = reaction
    return settled


def _first_change(changes: ScreenChanges, before: Capture, until: float) -> Capture | None:
    latest = before
    while True:
        grab = changes.next_change(latest, until)
        if grab is None or grab.raw != before.raw:
            return grab
        latest = grab  # drawn, but the same pixels again


def _wait_until_quiet(changes: ScreenChanges, first: Capture, quiet_s: float,
                      watch_until: float, limit: float) -> Settled:
    from .capture import looks_unchanged  # Pillow: loaded only where the executor runs

    candidate = latest = first
    png: Future[bytes] | None = changes.screen.encode_later(candidate)  # likely the answer
    while True:
        until = max(candidate.at + quiet_s, watch_until)
        grab = changes.next_change(latest, min(until, limit))
        if grab is None:
            if until <= limit:
                return Settled(candidate, png, changed=True, stable=True)
            drop(png)
            return Settled(latest, None, changed=True, stable=False)
        latest = grab
        if not looks_unchanged(candidate, latest):
            drop(png)
            candidate, png = latest, changes.screen.encode_later(latest)


def drop(png: Future[bytes] | None) -> None:
    if png is not None:
        png.cancel()  # stops it unless it already runs; then it finishes unused





def settle_params(data: Any, kind: str) -> SettleParams:
    """The settle request, with defaults that suit the action type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RequestError("bad_request", "settle must be an object")
    default_change = DEFAULTS.change_timeout_for(kind)
    enabled = data.get("enabled", kind not in OBSERVING)
    if not isinstance(enabled, bool):
        raise RequestError("bad_request", "settle.enabled must be a boolean")
    return SettleParams(
        enabled=enabled and kind not in OBSERVING,
        change_timeout_s=_milliseconds(data, "change_timeout_ms", default_change),
        stable_s=_milliseconds(data, "stable_ms", DEFAULTS.stable_ms),
        max_s=_milliseconds(data, "max_ms", DEFAULTS.max_ms),
        min_stable_s=min(_milliseconds(data, "min_stable_ms", DEFAULTS.min_stable_ms),
                         _milliseconds(data, "stable_ms", DEFAULTS.stable_ms)),
        phase_s=_milliseconds(data, "phase_ms", DEFAULTS.phase_ms),
    )


def _milliseconds(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if not is_number(value) or not 0 <= value <= 60_000:
        raise RequestError("bad_request", f"settle.{name} must be a number in 0..60000")
    return float(value) / 1000.0

