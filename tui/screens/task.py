"""The task screen: say what to do, pick planner, policy and sandbox, start."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from tui.runner import PLANNERS, SANDBOXES, RunRequest


def shipped_profiles() -> list[str]:
    """Names of the policy profiles deskhand ships."""
    from policies.engine import shipped_profiles as names

    return list(names())


class TaskScreen(Screen[None]):
    """Delegate a task."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start"),
    ]

    class StartRequested(Message):
        """The user asked to start ``request``."""

        def __init__(self, request: RunRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(self, defaults: RunRequest) -> None:
        super().__init__()
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        defaults = self.defaults
        yield Header()
        with Vertical(id="task-form"):
            yield Label("Task", classes="field-label")
            yield Input(defaults.task, placeholder="What should the agent do? "
                        "(a script may bring its own task)", id="task-text")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field"):
                    yield Label("Planner", classes="field-label")
                    yield Select([(p, p) for p in PLANNERS], value=defaults.planner,
                                 allow_blank=False, id="task-planner")
                with Vertical(classes="field wide"):
                    yield Label("Script file", classes="field-label")
                    yield Input(str(defaults.script or ""), placeholder="steps.yaml",
                                id="task-script")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field wide"):
                    yield Label("Model", classes="field-label")
                    yield Input(defaults.model, placeholder="planner's default",
                                id="task-model")
                with Vertical(classes="field wide"):
                    yield Label("Base URL", classes="field-label")
                    yield Input(defaults.base_url, placeholder="http://localhost:8000/v1",
                                id="task-base-url")
                with Vertical(classes="field"):
                    yield Label("Max cost (USD)", classes="field-label")
                    yield Input("" if defaults.max_cost_usd is None else
                                f"{defaults.max_cost_usd:g}", placeholder="no limit",
                                type="number", id="task-max-cost")
            with Horizontal(classes="field-row"):
                with Vertical(classes="field wide"):
                    yield Label("Policy (profile name or file)", classes="field-label")
                    yield Input(defaults.policy, id="task-policy",
                                suggester=SuggestFromList(shipped_profiles()))
                with Vertical(classes="field"):
                    yield Label("Sandbox", classes="field-label")
                    yield Select([(s, s) for s in SANDBOXES], value=defaults.sandbox,
                                 allow_blank=False, id="task-sandbox")
            with Horizontal(id="task-buttons"):
                yield Button("Start", variant="primary", id="task-start")
                yield Button("Sessions", id="task-sessions")
            yield Static(id="task-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#task-text", Input).focus()
        self._show_script_field()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "task-planner":
            self._show_script_field()

    def on_input_submitted(self) -> None:
        self.action_start()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "task-start":
            self.action_start()
        elif event.button.id == "task-sessions":
            await self.app.run_action("sessions")

    def action_start(self) -> None:
        """Ask the app to start the task as the form describes it."""
        self.show_error("")
        self.post_message(self.StartRequested(self.request()))

    def request(self) -> RunRequest:
        """The form as a :class:`~tui.runner.RunRequest`."""
        script = self.query_one("#task-script", Input).value.strip()
        max_cost = self.query_one("#task-max-cost", Input).value.strip()
        return RunRequest(
            task=self.query_one("#task-text", Input).value,
            planner=str(self.query_one("#task-planner", Select).value),
            script=Path(script).expanduser() if script else None,
            policy=self.query_one("#task-policy", Input).value.strip(),
            sandbox=str(self.query_one("#task-sandbox", Select).value),
            model=self.query_one("#task-model", Input).value.strip(),
            base_url=self.query_one("#task-base-url", Input).value.strip(),
            max_cost_usd=float(max_cost) if max_cost else None,
        )

    def show_error(self, text: str) -> None:
        """Say why the task cannot start (empty hides the line)."""
        error = self.query_one("#task-error", Static)
        error.update(text)
        error.set_class(bool(text), "shown")

    def _show_script_field(self) -> None:
        is_script = self.query_one("#task-planner", Select).value == "script"
        self.query_one("#task-script", Input).disabled = not is_script
        for model_field in ("#task-model", "#task-base-url", "#task-max-cost"):
            self.query_one(model_field, Input).disabled = is_script
