"""A plan cache for goal steps: replay what a model planned on an unchanged screen.

:class:`CachedPlanner` wraps a live :class:`~agent.planners.base.Planner`, so
the agent loop does not know it is there.  Each goal turn is keyed on the
goal, the turn's index within the goal, the screen's hash (the frame's
sha256), the model and the policy's hash.  On a hit the cached actions are
proposed again — the loop still validates them, the policy still decides,
approvals are still asked, and each step's ``proposed_raw`` says
``{"plan_cache": "hit", "key": ...}`` in the audit log.  On a miss (or a
screen that differs) the wrapper falls back to the live planner for the rest
of the goal: a live model's conversation cannot resume from replayed turns.

Entries are small JSON files in a folder meant to be committed
(``.deskhand-cache/plans/<key>.json``).  They are written only for an attempt
that passed (:meth:`CachedPlanner.commit`), and an existing entry is never
overwritten: a fallback's plan does not replace a good one.

Modes (``--cache``): ``read-write``, ``read-only``, ``write-only``, ``off``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.planners.base import ActionOutcome, Observation, Planner, ProposedAction, Turn
from sandbox.actions import ActionError, parse_action

CacheMode = Literal["read-write", "read-only", "write-only", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("read-write", "read-only", "write-only", "off")
DEFAULT_CACHE_DIR = Path(".deskhand-cache/plans")
FORMAT = 1


@dataclass(frozen=True, slots=True)
class PlanKey:
    """What a cached turn depends on."""

    goal: str
    step: int
    screen_sha256: str
    model: str
    policy_sha256: str

    @property
    def digest(self) -> str:
        text = json.dumps([self.goal, self.step, self.screen_sha256, self.model,
                           self.policy_sha256], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """A turn as cached: the actions (canonical JSON), the message and how it finished."""

    actions: tuple[dict[str, Any], ...]
    message: str = ""
    finished: Literal["done", "failed"] | None = None


class PlanStore:
    """The cache folder: one JSON file per key, written atomically, never overwritten."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, key: PlanKey) -> Path:
        return self.folder / f"{key.digest}.json"

    def get(self, key: PlanKey) -> PlanEntry | None:
        """The entry for ``key``; None when absent, unreadable or for another key."""
        try:
            data = json.loads(self.path_of(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != _key_fields(key):
            return None
        finished = data.get("finished")
        return PlanEntry(actions=tuple(data.get("actions") or ()),
                         message=str(data.get("message") or ""),
                         finished=finished if finished in ("done", "failed") else None)

    def put(self, key: PlanKey, entry: PlanEntry) -> bool:
        """Write ``entry`` unless one exists for ``key``; True when written."""
        target = self.path_of(key)
        if target.exists():
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "key": _key_fields(key), "actions": list(entry.actions),
                "message": entry.message, "finished": entry.finished}
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".plan-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=1, sort_keys=True, ensure_ascii=False)
            out.write("\n")
        try:
            os.link(temporary, target)  # fails if another worker wrote it first
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)


def _key_fields(key: PlanKey) -> dict[str, Any]:
    return {"goal": key.goal, "step": key.step, "screen_sha256": key.screen_sha256,
            "model": key.model, "policy_sha256": key.policy_sha256}


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    written: int = 0
    kept: int = 0  # entries not written because a good one was already there


@dataclass(slots=True)
class _Pending:
    key: PlanKey
    entry: PlanEntry


class CachedPlanner:
    """A :class:`Planner` that serves goal turns from a :class:`PlanStore` (module docstring)."""

    def __init__(self, live: Planner, store: PlanStore, *, mode: CacheMode,
                 policy_sha256: str) -> None:
        self.live = live
        self.store = store
        self.mode = mode
        self.policy_sha256 = policy_sha256
        self.name = live.name
        self.model = live.model
        self.stats = CacheStats()
        self._step = 0
        self._fell_back = False
        self._pending: list[_Pending] = []

    @property
    def reads(self) -> bool:
        return self.mode in ("read-write", "read-only")

    @property
    def writes(self) -> bool:
        return self.mode in ("read-write", "write-only")

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        key = PlanKey(goal=observation.task, step=self._step,
                      screen_sha256=observation.frame.sha256, model=self.model,
                      policy_sha256=self.policy_sha256)
        self._step += 1
        cached = self._replay(key) if self.reads and not self._fell_back else None
        if cached is not None:
            self.stats.hits += 1
            return cached
        if self.reads:
            self.stats.misses += 1
        self._fell_back = True
        turn = self.live.next_turn(observation, outcomes)
        if self.writes:
            self._remember(key, turn)
        return turn

    def commit(self) -> CacheStats:
        """Write the live turns of a passing attempt (existing entries are kept)."""
        for pending in self._pending:
            if self.store.put(pending.key, pending.entry):
                self.stats.written += 1
            else:
                self.stats.kept += 1
        self._pending.clear()
        return self.stats

    def _replay(self, key: PlanKey) -> Turn | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        try:
            actions = [parse_action(dict(a)) for a in entry.actions]
        except (ActionError, ValueError, TypeError):
            return None  # an entry this version cannot read is a miss, not a crash
        marker = {"plan_cache": "hit", "key": key.digest}
        return Turn(actions=[ProposedAction(action=a, raw=marker) for a in actions],
                    message=entry.message, finished=entry.finished)

    def _remember(self, key: PlanKey, turn: Turn) -> None:
        if any(p.action is None or p.force_ask for p in turn.actions):
            return  # a malformed or escalated plan is not worth replaying
        actions = tuple(p.action.model_dump(mode="json") for p in turn.actions
                        if p.action is not None)
        self._pending.append(_Pending(key, PlanEntry(actions, turn.message, turn.finished)))
