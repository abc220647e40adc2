"""Tokens and estimated cost of the model that plans the run."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from audit.records import Usage


class CostMeter(Static):
    """Adds up :class:`~agent.planners.base.Usage` turn by turn.

    Hidden (CSS class ``idle``) until a turn reports any usage: a script
    planner costs nothing and has nothing to show.
    """

    input_tokens: reactive[int] = reactive(0)
    output_tokens: reactive[int] = reactive(0)
    cost_usd: reactive[float] = reactive(0.0)

    def on_mount(self) -> None:
        self.add_class("idle")
        self._show()

    def add_usage(self, usage: Usage) -> None:
        """Count one turn's usage."""
        if usage == Usage():
            return
        self.remove_class("idle")
        self.input_tokens += usage.input_tokens + usage.cache_read_tokens \
            + usage.cache_write_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += usage.cost_usd

    def watch_input_tokens(self) -> None:
        self._show()

    def watch_output_tokens(self) -> None:
        self._show()

    def watch_cost_usd(self) -> None:
        self._show()

    def _show(self) -> None:
        self.update(f"tokens in {self.input_tokens:,}  out {self.output_tokens:,}  "
                    f"cost ${self.cost_usd:.4f}")
