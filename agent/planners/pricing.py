"""Per-model token prices, to estimate what a turn cost.

Prices are US dollars per million tokens, as published by the providers for
the standard tier (5-minute cache writes).  They are estimates for budgets
and reports, not invoices; a model missing from the table costs 0 and
:func:`estimate_cost` says so in its note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from audit.records import Usage


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Dollars per million tokens of each kind."""

    input: float
    output: float
    cache_write: float
    cache_read: float


def _claude(input_price: float, output_price: float) -> ModelPrice:
    # Anthropic bills 5-minute cache writes at 1.25x and cache reads at 0.1x the input price.
    return ModelPrice(input_price, output_price, input_price * 1.25, input_price * 0.1)


CLAUDE_PRICES: Mapping[str, ModelPrice] = {
    "claude-3-haiku": _claude(0.25, 1.25),
    "claude-3-5-haiku": _claude(0.80, 4.0),
    "claude-3-5-sonnet": _claude(3.0, 15.0),
    "claude-3-7-sonnet": _claude(3.0, 15.0),
    "claude-3-opus": _claude(15.0, 75.0),
    "claude-sonnet-4": _claude(3.0, 15.0),
    "claude-sonnet-4-0": _claude(3.0, 15.0),
    "claude-sonnet-4-5": _claude(3.0, 15.0),
    "claude-sonnet-4-6": _claude(3.0, 15.0),
    "claude-opus-4": _claude(15.0, 75.0),
    "claude-opus-4-0": _claude(15.0, 75.0),
    "claude-opus-4-1": _claude(15.0, 75.0),
    "claude-opus-4-5": _claude(5.0, 25.0),
    "claude-opus-4-6": _claude(5.0, 25.0),
    "claude-haiku-4-5": _claude(1.0, 5.0),
}

OPENAI_PRICES: Mapping[str, ModelPrice] = {
    # OpenAI bills no cache writes; cached input is half price for this model.
    "computer-use-preview": ModelPrice(3.0, 12.0, 0.0, 1.5),
}

# Dated snapshots and moving aliases share the price of their family.
_SUFFIX = re.compile(r"-(\d{8}|latest)$")


@dataclass(frozen=True, slots=True)
class CostEstimate:
    usd: float
    note: str = ""


def price_for(model: str, table: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model`` (``claude-sonnet-4-5-20250929`` finds ``claude-sonnet-4-5``)."""
    if model in table:
        return table[model]
    return table.get(_SUFFIX.sub("", model))


def estimate_cost(model: str, usage: Usage, table: Mapping[str, ModelPrice]) -> CostEstimate:
    """Dollars for ``usage`` (whose ``input_tokens`` exclude cached tokens)."""
    price = price_for(model, table)
    if price is None:
        return CostEstimate(0.0, f"no price known for model {model!r}; its cost is reported as 0")
    usd = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1_000_000
    return CostEstimate(usd)
