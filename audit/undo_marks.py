"""Checkpoints, rollbacks and refused undos, placed on a session's step timeline.

Every front end that draws a timeline (the terminal replay, the HTML export,
the TUI's replay and live screens) shows the same marks, so they are read
from the audit events once, here: :func:`undo_marks` turns ``checkpoint``,
``rollback`` and ``undo_refused`` events into :class:`UndoMark` values, each
with the position of the step row it belongs beside and one line of text.

A checkpoint belongs to the step it was taken before.  A rollback and a
refusal belong to the step before which the run served the request: the
latest step recorded when the event was.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from audit.checkpoints import CHECKPOINT_EVENT, ROLLBACK_EVENT
from audit.records import EventRecord, StepRecord

MarkKind = Literal["checkpoint", "skipped", "rollback", "refused"]
UNDO_REQUEST_EVENT = "undo_request"
UNDO_REFUSED_EVENT = "undo_refused"


@dataclass(frozen=True, slots=True)
class UndoMark:
    """One mark: ``step`` is the step index it names, ``position`` the row it shows at."""

    kind: MarkKind
    step: int
    position: int
    text: str
    event_id: int
    files: int = 0
    size: int = 0  # a checkpoint's bytes of files

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "step": self.step, "position": self.position,
                "text": self.text}


def undo_marks(events: Sequence[EventRecord], steps: Sequence[StepRecord]) -> list[UndoMark]:
    """The session's checkpoint, rollback and refusal marks, in the order they happened."""
    positions = {step.index: position for position, step in enumerate(steps)}
    starts = [step.created_at for step in steps]
    asked = {e.id: int(e.data["to_step"]) for e in events if e.kind == UNDO_REQUEST_EVENT}
    marks = []
    for event in events:
        if event.kind == CHECKPOINT_EVENT:
            step = int(event.data["step"])
            position = positions.get(step)
            if position is not None:
                marks.append(_checkpoint_mark(event, step, position))
        elif event.kind in (ROLLBACK_EVENT, UNDO_REFUSED_EVENT):
            position = max(0, bisect_right(starts, event.at) - 1)
            marks.append(_undo_mark(event, position, asked))
    return marks


def checkpoint_text(data: dict[str, Any]) -> str:
    """``12 files, 1.20 MB (100.0 kB new), 0.4 s`` or ``skipped: why``."""
    if "skipped" in data:
        return f"skipped: {data['skipped']}"
    return (f"{len(data.get('files') or {})} files, {size_text(int(data.get('size') or 0))} "
            f"({size_text(int(data.get('new_bytes') or 0))} new), "
            f"{float(data.get('seconds') or 0):.1f} s, "
            f"{str(data.get('sha256', ''))[:12]}")


def _checkpoint_mark(event: EventRecord, step: int, position: int) -> UndoMark:
    data = event.data
    kind: MarkKind = "skipped" if "skipped" in data else "checkpoint"
    return UndoMark(kind, step, position, f"before step {step}: {checkpoint_text(data)}",
                    event.id, files=len(data.get("files") or {}), size=int(data.get("size") or 0))


def _undo_mark(event: EventRecord, position: int, asked: dict[int, int]) -> UndoMark:
    if event.kind == ROLLBACK_EVENT:
        to_step = int(event.data["to_step"])
        files = int(event.data["files"])
        return UndoMark("rollback", to_step, position,
                        f"files put back as before step {to_step} ({files} files)", event.id,
                        files=files)
    why = str(event.data.get("why", ""))
    return UndoMark("refused", asked.get(int(event.data.get("request") or 0), -1), position,
                    f"undo refused: {why}", event.id)


def size_text(size: int) -> str:
    """``1.20 MB``, ``100.0 kB``, ``512 B``."""
    if size >= 1_000_000:
        return f"{size / 1e6:.2f} MB"
    return f"{size / 1e3:.1f} kB" if size >= 1000 else f"{size} B"
