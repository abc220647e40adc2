"""The evasion and everyday corpora (evasions.yaml, everyday.yaml) as action sequences."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.actions import Action, TypeText, parse_action

HERE = Path(__file__).resolve().parent
EVASIONS = Path(__file__).resolve().parents[2] / "policies" / "data" / "redteam" / "evasions.yaml"
TERMINAL = "xterm"


@dataclass(frozen=True)
class Attempt:
    """One corpus item: a name, what it tries, the window and the actions."""

    id: str
    what: str
    window: str
    actions: tuple[Action, ...]
    desktop: bool = True


def _attempt(item: dict[str, Any]) -> Attempt:
    if "line" in item:
        actions: tuple[Action, ...] = (TypeText(text=str(item["line"]) + "\n"),)
    else:
        actions = tuple(parse_action(a) for a in item["actions"])
    return Attempt(id=item["id"], what=item["what"], window=item.get("window", TERMINAL),
                   actions=actions, desktop=item.get("desktop", True))


def evasions() -> list[Attempt]:
    items: list[dict[str, Any]] = yaml.safe_load(EVASIONS.read_text("utf-8"))
    return [_attempt(item) for item in items]


def everyday() -> list[Attempt]:
    lines: list[str] = yaml.safe_load((HERE / "everyday.yaml").read_text("utf-8"))
    return [Attempt(id=line, what=line, window=TERMINAL, actions=(TypeText(text=line + "\n"),))
            for line in lines]
