"""What is under a click, and what is on screen for a planner: a run's elements per frame.

:class:`FrameElements` holds the run's element sources in order of trust (the
accessibility tree first, then OCR's phrases or a vision model's elements)
and reads each at most once per frame, on one worker thread, so that asking
twice about a frame (the planner's list, then the click's target) costs one
read.  Nobody waits longer than ``wait_s`` per question: a source that has not
answered by then is skipped for that question (its read goes on and serves
the next one), and a step is never held up for long::

    elements = FrameElements([AccessibilityTree(box), TextAsElements(ocr)], wait_s=1.0)
    target = elements.target_at(frame, 640, 400)   # TargetElement | None
    shown = elements.listed(frame)                 # for a planner's element list

The target is the smallest element whose box holds the point, windows and
dialogs aside (a click inside a dialog aims at what it lands on, not at the
dialog); OCR's phrases are asked only where the tree has nothing there.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from agent.perception.elements import Element, ElementSource, NoteFn, SourceNotes, normalize_role
from agent.perception.errors import PerceptionError
from policies.decision import TargetElement
from sandbox.actions import Action, Click, MouseUp
from sandbox.base import Frame
from sandbox.errors import SandboxError

DEFAULT_WAIT_S = 1.0
REMEMBERED_FRAMES = 4  # the loop asks about the latest frame, now and then the one before

# Roles that frame other elements rather than being what a click presses.
CONTAINER_ROLES = frozenset({
    "frame", "window", "dialog", "alert", "file chooser", "application", "desktop frame",
    "root pane", "layered pane", "glass pane", "filler", "panel", "scroll pane", "viewport",
    "split pane", "internal frame", "option pane", "color chooser", "font chooser",
})


def is_container(element: Element) -> bool:
    return normalize_role(element.role) in CONTAINER_ROLES


def element_at(elements: Sequence[Element], x: int, y: int) -> Element | None:
    """The smallest non-container element whose box holds ``(x, y)``; of equal boxes, the
    last (deepest in the tree) one."""
    best: tuple[int, int, Element] | None = None
    for index, element in enumerate(elements):
        x0, y0, x1, y1 = element.box
        if not (x0 <= x < x1 and y0 <= y < y1) or is_container(element):
            continue
        key = ((x1 - x0) * (y1 - y0), -index)
        if best is None or key < best[:2]:
            best = (key[0], key[1], element)
    return None if best is None else best[2]


def pressed_at(action: Action, cursor: tuple[int, int] | None) -> tuple[int, int] | None:
    """Where ``action`` presses: a click's point (the pointer's without one), a mouse
    button's release at the pointer (what activates a button); ``None`` for the rest."""
    if isinstance(action, Click):
        return (action.x, action.y) if action.x is not None and action.y is not None else cursor
    return cursor if isinstance(action, MouseUp) else None


def outside(elements: Sequence[Element],
            boxes: Sequence[tuple[int, int, int, int]]) -> list[Element]:
    """The elements that overlap none of ``boxes`` (what a frame's redaction blacked out
    must not reach a planner as a name either)."""
    from agent.perception.regions import intersects

    return [e for e in elements if not any(intersects(e.box, box) for box in boxes)]


def as_target(element: Element) -> TargetElement:
    return TargetElement(role=element.role, name=element.name, box=element.box,
                         source=element.source)


class FrameElements:
    """A run's element sources, read once per frame off the loop's path, waited for briefly."""

    def __init__(self, sources: Sequence[ElementSource], *, wait_s: float = DEFAULT_WAIT_S,
                 note: NoteFn | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = tuple(sources)
        self.wait_s = wait_s
        self._notes = SourceNotes.of(note)  # a run's shared one: each problem said once
        self._clock = clock
        self._reads: OrderedDict[tuple[str, int], Future[list[Element]]] = OrderedDict()
        self._lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None

    def target_at(self, frame: Frame, x: int, y: int) -> TargetElement | None:
        """The element under ``(x, y)`` on ``frame``, from the first source that has one
        there and answers in time; ``None`` when none does."""
        deadline = self._clock() + self.wait_s
        for index in range(len(self.sources)):
            found = self._answer(frame, index, deadline)
            under = element_at(found, x, y) if found else None
            if under is not None:
                return as_target(under)
        return None

    def listed(self, frame: Frame) -> list[Element]:
        """The elements of the first source that shows any in time (the tree where the
        app exposes one, else OCR's phrases); empty when none does."""
        deadline = self._clock() + self.wait_s
        for index in range(len(self.sources)):
            found = self._answer(frame, index, deadline)
            if found:
                return found
        return []

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.shutdown(wait=False, cancel_futures=True)

    # -- reading ---------------------------------------------------------------

    def _answer(self, frame: Frame, index: int, deadline: float) -> list[Element] | None:
        """Source ``index``'s elements on ``frame``, or ``None`` when it failed or did not
        answer by ``deadline``."""
        read = self._read(frame, index)
        try:
            return list(read.result(timeout=max(0.0, deadline - self._clock())))
        except FutureTimeout:
            self._notes.say(self.sources[index], "timeout",
                            f"{self._name(index)}: no answer within {self.wait_s:g} s; "
                            "the step goes on without it")
        except (PerceptionError, SandboxError) as exc:
            self._notes.say(self.sources[index], type(exc).__name__,
                            f"{self._name(index)}: {exc}")
        return None

    def _read(self, frame: Frame, index: int) -> Future[list[Element]]:
        key = (frame.sha256, index)
        with self._lock:
            if key not in self._reads:
                if self._worker is None:
                    self._worker = ThreadPoolExecutor(max_workers=1,
                                                      thread_name_prefix="elements")
                self._reads[key] = self._worker.submit(self.sources[index].elements, frame)
                while len(self._reads) > REMEMBERED_FRAMES * len(self.sources):
                    self._reads.popitem(last=False)[1].cancel()
            return self._reads[key]

    def _name(self, index: int) -> str:
        return f"elements ({type(self.sources[index]).__name__})"
