"""The deskhand terminal UI.

Without ``attach`` it opens on the task screen: describe a task, start it,
watch it live and answer its approvals.  With ``attach`` it watches the
audit database for runs started elsewhere (``deskhand run`` in another
terminal) and answers their approvals.  Either way F2 browses and replays
recorded sessions.

The app is handed its audit log connection (:class:`~tui.store.TuiStore`)
and the factories a run is built from (:class:`~tui.runner.RunServices`);
it builds no client itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from agent.settings import Settings
from audit.presence import ApproverPresence
from tui.errors import REQUEST_ERRORS
from tui.graphics import Graphics
from tui.runner import RunRequest, RunServices, prepare_run
from tui.screen_words import OcrWords, WordsReader
from tui.screens.attach import AttachScreen
from tui.screens.live import STOPPING_NOTICE, LiveScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.task import TaskScreen
from tui.store import TuiStore
from tui.widgets.approval_queue import Approver

CHANNEL = "tui"
# How long quitting waits for a stopped run to record its end.
RUN_STOP_WAIT_S = 10.0
ATTACH_CHANNEL = "tui-attach"


@dataclass(frozen=True, slots=True)
class TuiOptions:
    """How the TUI was asked to start."""

    settings: Settings
    attach: bool = False
    task: str = ""
    script: Path | None = None
    user: str = "user"
    graphics: Graphics = "halfblock"
    poll_s: float = 0.2
    # Read the words around an approval's target with the offline OCR.
    read_screen_words: bool = True

    @property
    def approver(self) -> Approver:
        """Who answers approvals from this TUI, as the audit log records it."""
        return Approver(name=f"{self.user}@tui",
                        channel=ATTACH_CHANNEL if self.attach else CHANNEL)

    def run_defaults(self) -> RunRequest:
        """What the task screen shows before the user changes anything."""
        settings = self.settings
        return RunRequest(task=self.task, planner=settings.planner, script=self.script,
                          policy=settings.policy, sandbox=settings.sandbox,
                          model=settings.model, base_url=settings.base_url or "",
                          max_cost_usd=settings.max_cost_usd)


class DeskhandApp(App[None]):
    """Delegate, watch, approve, replay."""

    # Every screen's stylesheet is loaded once, here: a screen with its own
    # CSS_PATH makes Textual re-parse all styles the first time it is shown.
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        "app.tcss", "screens/task.tcss", "screens/live.tcss", "screens/attach.tcss",
        "screens/sessions.tcss", "screens/replay.tcss", "screens/undo_confirm.tcss",
    ]
    TITLE = "deskhand"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "sessions", "Sessions"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, options: TuiOptions, store: TuiStore, *,
                 services: RunServices | None = None) -> None:
        super().__init__()
        self.options = options
        self.store = store
        self.services = services or RunServices()
        self.graphics: str = options.graphics
        # The signal that made the app quit, if one did (the CLI then exits 130).
        self.stopped_by: str | None = None
        self.screen_words: WordsReader | None = OcrWords() if options.read_screen_words else None

    def on_mount(self) -> None:
        self._stop_on_signals()
        db_name = self.options.settings.db_path.name
        self.sub_title = db_name
        if self.options.attach:
            self.push_screen(AttachScreen(self.store, self.options.approver,
                                          graphics=self.graphics, poll_s=self.options.poll_s,
                                          db_name=db_name,
                                          presence=ApproverPresence(
                                              self.options.settings.db_path)))
        else:
            self.push_screen(TaskScreen(self.options.run_defaults()))

    def on_task_screen_start_requested(self, message: TaskScreen.StartRequested) -> None:
        try:
            prepared = prepare_run(message.request, self.options.settings)
        except REQUEST_ERRORS as exc:
            if isinstance(self.screen, TaskScreen):
                self.screen.show_error(str(exc))
            return
        self.push_screen(LiveScreen(self.store, self.options.approver, prepared=prepared,
                                    services=self.services, graphics=self.graphics,
                                    poll_s=self.options.poll_s))

    def _stop_on_signals(self) -> None:
        """SIGTERM and SIGHUP quit as Ctrl-Q does: runs stopped, their approvals denied.

        (Ctrl-C is a key in the TUI.)  Handled on the event loop, so Textual
        restores the terminal on the way out.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._quit_for_signal, signum)

    def _quit_for_signal(self, signum: int) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(signum).name
            self.run_worker(self._quit(f"interrupted by {self.stopped_by}"), exclusive=False)

    async def _quit(self, reason: str) -> None:
        await self.stop_runs(reason)
        self.exit()

    async def action_quit(self) -> None:
        """Stop any run (denying what it waits for), give it a moment to close its
        session in the audit log, then quit."""
        await self.stop_runs()
        await super().action_quit()

    async def stop_runs(self, reason: str | None = None) -> None:
        """Stop every run started here and wait (briefly) for their threads to end."""
        live = [s for s in self.screen_stack if isinstance(s, LiveScreen) and s.running]
        if live:
            self.notify(STOPPING_NOTICE, title="quitting")
        for screen in live:
            screen.stop_run(reason)
        workers = [s.worker for s in live if s.worker is not None]
        if not workers:
            return  # (an empty list would wait for every worker of the app)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.workers.wait_for_complete(workers), RUN_STOP_WAIT_S)

    def action_sessions(self) -> None:
        """Browse recorded sessions."""
        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.store))
