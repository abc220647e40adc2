"""A run's notes: what a front end is told about the run, kept in the audit log too.

Some things worth knowing about a run are said before its session exists —
which sandbox ``auto`` chose and why — and some while it runs from other
threads — an element source that cannot read this desktop.  A front end shows
them as they come (stderr, the TUI); :class:`RunNotes` also records each as a
``run_note`` event of the session, holding the early ones until the session
is recorded, so that a replay months later says what the person was told.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from audit.records import RUN_NOTE_EVENT


class EventLog(Protocol):
    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...


class RunNotes:
    """Call it with a note: passed on to ``say`` at once, recorded once the session is."""

    def __init__(self, say: Callable[[str], None] = lambda _text: None) -> None:
        self._say = say
        self._lock = threading.Lock()
        self._waiting: list[str] = []
        self._log: EventLog | None = None
        self._session_id = ""
        self._closed = False

    def __call__(self, text: str) -> None:
        self._say(text)
        with self._lock:
            if self._closed:
                return
            if self._log is None:
                self._waiting.append(text)
            else:
                self._record(text)

    def start(self, log: EventLog, session_id: str) -> None:
        """The session is recorded: the notes said before it go in now, later ones as said."""
        with self._lock:
            self._log, self._session_id = log, session_id
            for text in self._waiting:
                self._record(text)
            self._waiting.clear()

    def close(self) -> None:
        """The log is closing: notes said from now on are only passed on."""
        with self._lock:
            self._closed = True
            self._log = None

    def _record(self, text: str) -> None:
        assert self._log is not None
        self._log.record_event(self._session_id, RUN_NOTE_EVENT, {"text": text})
