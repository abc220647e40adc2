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

FRAME_INTERVAL_S = 0.005  # settle polls the screen this often; a grab costs ~1 ms
ENCODE_RESERVE_S = 0.040  # time kept back from the deadline to encode the final frame

OBSERVING = frozenset({"screenshot", "cursor_position", "zoom", "wait"})
"""Actions that only look: nothing to settle after them."""


@dataclass(frozen=True, slots=True)
class SettleDefaults:
    """How long the executor waits for the screen after an action (milliseconds).

    ``change_timeout_ms`` bounds the wait for any visible effect (some actions
    have none); pointer moves get the shorter ``move_change_timeout_ms``.
    The screen must then stay put for a quiet window that adapts to how fast
    it reacted: twice the reaction time, at least ``min_stable_ms`` and at most
    ``stable_ms``.  ``max_ms`` caps it all.
    """

    change_timeout_ms: int = 1000
    move_change_timeout_ms: int = 150
    stable_ms: int = 60
    min_stable_ms: int = 12
    max_ms: int = 3000

    def args_for(self, action_type: str, *, enabled: bool = True) -> dict[str, Any]:
        """The ``settle`` object of an ``execute`` request for ``action_type``."""
        change = self.move_change_timeout_ms if action_type == "mouse_move" else \
            self.change_timeout_ms
        return {"enabled": enabled and action_type not in OBSERVING,
                "change_timeout_ms": change, "stable_ms": self.stable_ms,
                "min_stable_ms": self.min_stable_ms, "max_ms": self.max_ms}


DEFAULTS = SettleDefaults()


@dataclass
class Settled:
    capture: Capture
    png: Future[bytes] | None  # the capture's PNG, when settling already started encoding it
    changed: bool
    stable: bool

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


def settle(screen: Screen, before: Capture, params: SettleParams, deadline: Deadline) -> Settled:
    """Wait for the screen to react to an action, then to stop changing.

    First wait (up to the change timeout) for any difference from ``before``;
    then until frames stay unchanged, give or take a caret, for ``stable_s``.
    The frame returned is the first of the stable run, so it never predates an
    effect that was seen.  The whole wait is capped by ``max_s`` and the deadline.
    """
    start = time.monotonic()
    limit = start + max(0.0, min(params.max_s, deadline.remaining() - ENCODE_RESERVE_S))
    latest = screen.grab()
    while latest.raw == before.raw:
        if latest.at >= min(start + params.change_timeout_s, limit):
            return Settled(latest, None, changed=False, stable=latest.at < limit)
        latest = _grab_after(screen, latest)
    quiet = params.quiet_window(latest.at - start)
    return _wait_until_stable(screen, latest, quiet, limit)


def _wait_until_stable(screen: Screen, first: Capture, stable_s: float, limit: float) -> Settled:
    from .capture import looks_unchanged  # Pillow: loaded only where the executor runs

    candidate, latest = first, first
    png: Future[bytes] | None = None
    while latest.at - candidate.at < stable_s:
        if latest.at >= limit:
            drop(png)
            return Settled(latest, None, changed=True, stable=False)
        if png is None and latest is not candidate:
            png = screen.encode_later(candidate)  # likely the answer: encode while waiting
        latest = _grab_after(screen, latest)
        if not looks_unchanged(candidate, latest):
            drop(png)
            candidate, png = latest, None
    return Settled(candidate, png, changed=True, stable=True)


def drop(png: Future[bytes] | None) -> None:
    if png is not None:
        png.cancel()  # stops it unless it already runs; then it finishes unused


def _grab_after(screen: Screen, previous: Capture) -> Capture:
    time.sleep(max(0.0, previous.at + FRAME_INTERVAL_S - time.monotonic()))
    return screen.grab()



def settle_params(data: Any, kind: str) -> SettleParams:
    """The settle request, with defaults that suit the action type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RequestError("bad_request", "settle must be an object")
    default_change = DEFAULTS.move_change_timeout_ms if kind == "mouse_move" else \
        DEFAULTS.change_timeout_ms
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
    )


def _milliseconds(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if not is_number(value) or not 0 <= value <= 60_000:
        raise RequestError("bad_request", f"settle.{name} must be a number in 0..60000")
    return float(value) / 1000.0

