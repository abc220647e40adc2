"""Messages a running task sends to the screen that watches it.

The agent loop runs in a worker thread; :class:`TuiReporter` is its
:class:`~agent.loop.Reporter` and hands each event to the UI thread with
``app.call_from_thread``.
"""

from __future__ import annotations

import threading

from PIL import Image
from textual.app import App
from textual.message import Message
from textual.message_pump import MessagePump

from agent.loop import RunSummary, StepReport
from agent.planners.base import Turn
from sandbox.base import Frame
from tui.imaging import decode_png


class StepReported(Message):
    """A step finished (ran, was denied, was invalid or failed)."""

    def __init__(self, report: StepReport) -> None:
        super().__init__()
        self.report = report


class FrameCaptured(Message):
    """The sandbox showed a new frame; ``image`` is it decoded (RGB), when the
    sender already did that work off the UI thread."""

    def __init__(self, frame: Frame, image: Image.Image | None = None) -> None:
        super().__init__()
        self.frame = frame
        self.image = image


class TurnPlanned(Message):
    """The planner answered a turn (its usage feeds the cost meter)."""

    def __init__(self, turn: Turn) -> None:
        super().__init__()
        self.turn = turn


class RunNoted(Message):
    """The run said something the person should know that is not a step (which
    sandbox it chose and why, what the element sources cannot read)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RunFinished(Message):
    """The run ended: a summary, or the error that stopped it before it began."""

    def __init__(self, summary: RunSummary | None, error: str = "") -> None:
        super().__init__()
        self.summary = summary
        self.error = error


class TuiReporter:
    """A :class:`~agent.loop.Reporter` that posts to ``target`` from the loop's thread.

    When ``stop`` is set (the user left the screen or quit) nothing more is
    posted; the loop, given ``should_stop=stop.is_set``, ends the session as
    interrupted before its next step.
    """

    def __init__(self, app: App[object], target: MessagePump, stop: threading.Event) -> None:
        self.app = app
        self.target = target
        self.stop = stop
        self._last_frame = ""

    def on_step(self, report: StepReport) -> None:
        self._post(StepReported(report))

    def on_turn(self, turn: Turn) -> None:
        self._post(TurnPlanned(turn))

    def note(self, text: str) -> None:
        """The run's notes (:data:`agent.runs.Note`), posted like its events."""
        self._post(RunNoted(text))

    def on_frame(self, frame: Frame) -> None:
        # An unchanged screen is not sent again; a changed one is decoded here,
        # in the loop's thread, so the UI thread only paints.
        if frame.sha256 == self._last_frame:
            return
        self._last_frame = frame.sha256
        self._post(FrameCaptured(frame, decode_png(frame.png)))

    def _post(self, message: Message) -> None:
        if self.stop.is_set():
            return
        try:
            self.app.call_from_thread(self.target.post_message, message)
        except RuntimeError:
            # The app is gone (it quit while the loop was between steps).
            self.stop.set()
