"""How the executor learns that the screen changed: X DAMAGE events, or polling as a fallback.

With the DAMAGE extension (Xvfb has it) the X server itself says when any
client drew on the screen, so settling sleeps until something is drawn and
grabs the screen only then, instead of grabbing every few milliseconds to look
for a difference.  The watch has its own X connection: its events never mix
with the input connection's.

The protocol per change: on a DamageNotify the watch subtracts the damage
(which re-arms the notification) and syncs before grabbing, so the grab shows
everything drawn up to the subtract; whatever is drawn after it notifies again.
"""

from __future__ import annotations

import select
import time
from typing import Any, Protocol

from Xlib import X
from Xlib import display as xdisplay
from Xlib.ext import damage

from .capture import Capture, Screen

POLL_INTERVAL_S = 0.005  # the fallback grabs this often; a grab costs ~1 ms


class ScreenChanges(Protocol):
    """A source of "the screen changed" signals, each answered with a fresh grab."""

    kind: str
    screen: Screen

    def forget(self) -> None:
        """Drop what was drawn so far: only changes after this call count."""

    def next_change(self, latest: Capture, until: float) -> Capture | None:
        """A grab taken after the next change to the screen (``latest`` is the most recent
        grab), or ``None`` when nothing changed before ``until`` (``time.monotonic()``)."""

    def close(self) -> None: ...


class DamageChanges:
    """Changes reported by the X server's DAMAGE extension on the root window."""

    kind = "damage"

    def __init__(self, display: Any, screen: Screen) -> None:
        self._display = display
        self.screen = screen
        self._damage = display.screen().root.damage_create(damage.DamageReportNonEmpty)
        self.forget()

    @classmethod
    def open(cls, display_name: str, screen: Screen) -> DamageChanges | None:
        """A watch on ``display_name``, or ``None`` when its server has no DAMAGE extension."""
        display = xdisplay.Display(display_name)
        if not display.has_extension("DAMAGE"):
            display.close()
            return None
        display.damage_query_version()  # the server expects the client to say its version
        return cls(display, screen)

    def forget(self) -> None:
        self._rearm()
        self._drain()

    def next_change(self, latest: Capture, until: float) -> Capture | None:
        while not self._drain():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            select.select([self._display], [], [], remaining)
        self._rearm()
        return self.screen.grab()

    def _drain(self) -> bool:
        """Consume queued events; true when one of them reported damage."""
        damaged = False
        while self._display.pending_events():
            damaged |= self._display.next_event().type != X.MappingNotify
        return damaged

    def _rearm(self) -> None:
        self._display.damage_subtract(self._damage, X.NONE, X.NONE)
        self._display.sync()

    def close(self) -> None:
        self._display.close()


class PolledChanges:
    """Changes found by grabbing the screen every few milliseconds (no DAMAGE extension)."""

    kind = "poll"

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    def forget(self) -> None:
        pass

    def next_change(self, latest: Capture, until: float) -> Capture | None:
        previous = latest
        while True:
            time.sleep(max(0.0, min(previous.at + POLL_INTERVAL_S, until) - time.monotonic()))
            if time.monotonic() >= until:
                return None
            grab = self.screen.grab()
            if grab.raw != previous.raw:
                return grab
            previous = grab

    def close(self) -> None:
        pass


def watch_changes(display_name: str, screen: Screen) -> ScreenChanges:
    """The best source of change signals the display offers."""
    return DamageChanges.open(display_name, screen) or PolledChanges(screen)
