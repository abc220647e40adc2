"""Suite runs in the sessions browser: each run's cases with their statuses; Enter on an
attempt replays its session."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, Tree

from tui.store import TuiStore
from tui.suite_runs import SuiteRun
from tui.widgets.session_table import started_text

MAX_SESSIONS = 2000
STATUS_STYLES = {"passed": "green", "flaky": "yellow", "failed": "red", "error": "red",
                 "blocked_by_policy": "magenta", "budget_exceeded": "yellow", "skipped": "dim"}


class SuiteRunsScreen(Screen[None]):
    """``deskhand test`` runs, grouped by run and case."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, store: TuiStore) -> None:
        super().__init__()
        self.store = store
        self.runs: list[SuiteRun] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="suite-runs-count")
        yield Tree[str]("suite runs", id="suite-runs")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "suite runs"
        self.action_reload()
        self.query_one(Tree).focus()

    def action_reload(self) -> None:
        self.runs = self.store.suite_runs(MAX_SESSIONS)
        self._fill(self.query_one(Tree))
        cases = sum(len(run.cases) for run in self.runs)
        self.query_one("#suite-runs-count", Static).update(
            f"{len(self.runs)} suite runs, {cases} cases — Enter on an attempt replays it"
            if self.runs else "no suite runs recorded (deskhand test)")

    def _fill(self, tree: Tree[str]) -> None:
        tree.clear()
        tree.root.expand()
        for run in self.runs:
            counts = ", ".join(f"{n} {status}" for status, n in sorted(run.counts().items()))
            run_node = tree.root.add(Text(f"{run.suite}  run {run.run_id[:8]}  "
                                          f"{started_text(run.started_at)}  ({counts})"),
                                     expand=True)
            for case in run.cases.values():
                case_node = run_node.add(Text.assemble(f"{case.case}  ", _status(case.status)),
                                         expand=True)
                for attempt in case.attempts:
                    label = Text.assemble(f"attempt {attempt.attempt}"
                                          + (f" (repeat {attempt.repeat})" if attempt.repeat
                                             else "") + "  ", _status(attempt.status),
                                          f"  {attempt.session_id[:12]}")
                    case_node.add_leaf(label, data=attempt.session_id)

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        session_id = event.node.data
        if session_id is None:
            return
        from tui.screens.replay import ReplayScreen

        self.app.push_screen(ReplayScreen(self.store, session_id,
                                          graphics=getattr(self.app, "graphics", "halfblock")))


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))
