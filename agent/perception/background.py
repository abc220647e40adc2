"""Perception off the loop's critical path: a frame is read while the model plans.

:class:`BackgroundPerception` wraps any perceiver.  The loop calls
:meth:`~BackgroundPerception.prefetch` as soon as a frame exists (the first
screenshot, the frame after each action); one worker thread then reads that
frame for injection while the planner thinks, so the verdict is usually ready
before the action is decided.  :meth:`~BackgroundPerception.injection_risk`
returns the prefetched verdict (waiting for it if the read is still under way)
or reads the frame itself.  The wrapped perceiver loads its models lazily, in
the worker, the first time it is needed; :class:`OnDemandParser` and
:class:`OnceTriager` keep only the models a run needs in memory.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from agent.perception.heap import keep_heap_lean, release_freed_memory
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame

if TYPE_CHECKING:
    from agent.perception.screen import ScreenParser, TextElement
    from agent.perception.triage import Triager

REMEMBERED_FRAMES = 4  # verdicts kept: the loop asks about the latest frame or the one before


class InjectionReader(Protocol):
    def triage(self, task: str) -> Triage | None: ...

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]: ...

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None: ...


class BackgroundPerception:
    """Reads frames for injection on a worker thread, ahead of the loop's question."""

    def __init__(self, inner: InjectionReader,
                 warm_up: Callable[[], object] | None = None) -> None:
        """``warm_up`` (loading the models, say) starts on the worker at once, so it runs
        while the sandbox starts rather than during the first step."""
        self.inner = inner
        keep_heap_lean()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perception")
        self._verdicts: OrderedDict[tuple[str, str], Future[tuple[float, str]]] = OrderedDict()
        if warm_up is not None:
            self._worker.submit(warm_up)

    def triage(self, task: str) -> Triage | None:
        return self.inner.triage(task)

    def prefetch(self, frame: Frame, task: str) -> None:
        """Start reading ``frame`` now; cheap when it was already started."""
        key = (frame.sha256, task)
        if key in self._verdicts:
            return
        self._verdicts[key] = self._worker.submit(self.inner.injection_risk, frame, task)
        while len(self._verdicts) > REMEMBERED_FRAMES:
            self._verdicts.popitem(last=False)[1].cancel()

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        """The verdict on ``frame``: the prefetched one, or read now."""
        self.prefetch(frame, task)
        return self._verdicts[(frame.sha256, task)].result()

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return self.inner.typed_from_screen(text, frame, task)

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None:
        locate = getattr(self.inner, "locate", None)
        return None if locate is None else locate(frame, text)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


class OnDemandParser:
    """A screen parser whose models load when the first frame is read (then stay loaded)."""

    def __init__(self, load: Callable[[], ScreenParser]) -> None:
        self._load = load
        self._parser: ScreenParser | None = None
        self._lock = threading.Lock()

    def parse(self, frame: Frame) -> list[TextElement]:
        return self.load().parse(frame)

    def load(self) -> ScreenParser:
        """The parser, loading its models now if they are not yet."""
        with self._lock:
            if self._parser is None:
                self._parser = self._load()
                release_freed_memory()
            return self._parser


class OnceTriager:
    """A triager loaded to classify and let go afterwards.

    A run classifies its task once, at its start; the word embeddings and their
    tokenizer (about 30 MiB while loaded) need not stay resident beside the OCR
    models for the rest of it.
    Another task in the same process loads them again (about a second).
    """

    def __init__(self, load: Callable[[], Triager]) -> None:
        self._load = load

    def classify(self, task: str) -> Triage:
        triager = self._load()
        try:
            return triager.classify(task)
        finally:
            del triager
            gc.collect()
            release_freed_memory()
