"""Export a session: one self-contained HTML file, or an animated GIF.

The HTML page carries every distinct frame once, as lossless WebP: a
keyframe now and then, and in between only the 32x32 tiles that changed
since the previous frame, composed on a canvas by a few lines of inline
JavaScript.  Marks are SVG drawn over the canvas.  No network, no files
beside it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from audit.frames import TILE, changed_tiles, pack_strip, webp_lossless
from audit.log import AuditLog
from audit.network import network_attempts, network_request, selfcheck_line
from audit.records import SessionRecord, StepRecord
from audit.render import describe, describe_target, draw_marks, marks_for
from audit.replay import _approval_line
from audit.undo_marks import undo_marks

KEYFRAME_EVERY = 24
MAX_PATCH_SHARE = 0.4
GIF_WIDTH = 640


@dataclass(frozen=True, slots=True)
class ExportStats:
    path: Path
    bytes: int
    steps: int
    frames: int
    keyframes: int


def export_html(log: AuditLog, session_id: str, path: Path) -> ExportStats:
    """Write the session as one HTML file at ``path``."""
    session = log.get_session(session_id)
    steps = log.steps(session.id)
    events = log.events(session.id)
    network = network_attempts(events, steps, session.started_at)
    order = _frame_order(log, steps)
    frames = _encode_frames(log, order)
    data = {
        "session": {"task": session.task, "meta": _meta_line(session)},
        "tile": TILE,
        "frames": frames,
        "steps": [_step_json(step, order) for step in steps],
        "network": [{"step": max(a.position, 0), "at": round(a.at_s, 3), "text": a.text,
                     "outcome": a.outcome} for a in network],
        "selfcheck": selfcheck_line(events),
        "undo": [mark.as_json() for mark in undo_marks(events, steps)],
    }
    page = _template().replace("__TITLE__", _html_text(f"deskhand session {session.id[:12]}"))
    page = page.replace("__DATA__", json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))
    path.write_text(page, encoding="utf-8")
    return ExportStats(path=path, bytes=path.stat().st_size, steps=len(steps),
                       frames=len(frames), keyframes=sum(1 for f in frames if "key" in f))


def _template() -> str:
    return resources.files("audit").joinpath("export_template.html").read_text(encoding="utf-8")


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _meta_line(session: SessionRecord) -> str:
    started = datetime.fromtimestamp(session.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    took = f"{session.duration_s:.1f} s" if session.duration_s is not None else "running"
    return (f"{session.id[:12]} · {started} · {took} · {session.outcome or 'running'}"
            f"{': ' + session.reason if session.reason else ''} · planner {session.planner} "
            f"{session.model} · policy {session.policy_name} {session.policy_sha256[:12]} · "
            f"{session.sandbox_kind} {session.screen_width}x{session.screen_height}")


def _frame_order(log: AuditLog, steps: list[StepRecord]) -> dict[str, int]:
    """Each distinct stored frame the steps show, numbered in order of first use."""
    order: dict[str, int] = {}
    for step in steps:
        for sha in (step.frame_before_sha256, step.frame_after_sha256):
            if sha and sha not in order and log.has_frame(sha):
                order[sha] = len(order)
    return order


def _encode_frames(log: AuditLog, order: dict[str, int]) -> list[dict[str, Any]]:
    encoded: list[dict[str, Any]] = []
    previous: Image.Image | None = None
    since_key = 0
    for sha in order:
        image = log.get_frame_image(sha).convert("RGB")
        patch = _patch(previous, image) if since_key < KEYFRAME_EVERY else None
        if patch is None:
            encoded.append({"key": _data_uri(webp_lossless(image)), "w": image.width,
                            "h": image.height})
            since_key = 0
        else:
            encoded.append({"base": len(encoded) - 1, **patch})
            since_key += 1
        previous = image
    return encoded


def _patch(previous: Image.Image | None, image: Image.Image) -> dict[str, Any] | None:
    if previous is None or previous.size != image.size:
        return None
    tiles = changed_tiles(previous, image)
    total = -(-image.width // TILE) * -(-image.height // TILE)
    if len(tiles) > MAX_PATCH_SHARE * total:
        return None
    strip, columns = pack_strip(image, tiles)
    return {"tiles": [list(tile) for tile in tiles], "cols": columns,
            "strip": _data_uri(webp_lossless(strip)), "w": image.width, "h": image.height}


def _data_uri(webp: bytes) -> str:
    kind = "webp" if webp[:4] == b"RIFF" else "png"
    return f"data:image/{kind};base64,{base64.b64encode(webp).decode('ascii')}"


def _step_json(step: StepRecord, order: dict[str, int]) -> dict[str, Any]:
    return {
        "index": step.index, "action": network_request(step) or describe(step.action),
        "target": describe_target(step.target_element) if step.target_element else None,
        "status": step.status,
        "effect": step.decision_effect, "rules": list(step.rule_ids),
        "reason": step.decision_reason, "validation_error": step.validation_error,
        "approval": _approval_line(step), "error": step.error, "timings": step.timings_ms,
        "usage": step.usage,
        "before": order.get(step.frame_before_sha256 or ""),
        "after": order.get(step.frame_after_sha256 or ""),
        "marks": [mark.as_json() for mark in marks_for(step.action, step.target_element)],
    }


def export_gif(log: AuditLog, session_id: str, path: Path, *, width: int = GIF_WIDTH,
               frame_ms: int = 800) -> ExportStats:
    """Write the session as an animated GIF: each step's frame with its action drawn."""
    session = log.get_session(session_id)
    steps = log.steps(session.id)
    pictures = [_gif_picture(log, step, width) for step in steps]
    shown = [picture for picture in pictures if picture is not None]
    if not shown:
        raise ValueError(f"session {session.id[:12]} has no recorded frames to animate")
    # One palette for all frames, no dithering: unchanged pixels stay identical from
    # frame to frame, so the GIF encoder stores only the regions that changed.
    palette = shown[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indexed = [picture.quantize(palette=palette, dither=Image.Dither.NONE) for picture in shown]
    indexed[0].save(path, "GIF", save_all=True, append_images=indexed[1:], duration=frame_ms,
                    loop=0)
    return ExportStats(path=path, bytes=path.stat().st_size, steps=len(steps),
                       frames=len(shown), keyframes=0)


def _gif_picture(log: AuditLog, step: StepRecord, width: int) -> Image.Image | None:
    sha = step.frame_before_sha256 or step.frame_after_sha256
    if not sha or not log.has_frame(sha):
        return None
    marked = draw_marks(log.get_frame_image(sha), marks_for(step.action, step.target_element))
    height = max(1, round(marked.height * width / marked.width))
    return marked.resize((width, height), Image.Resampling.LANCZOS)
