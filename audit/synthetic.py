"""A realistic made-up session for benchmarks, tests and demos of replay.

The desktop has a textured wallpaper (photos do not compress well, and
neither does this), a clock, an editor that gains a line every few steps and
a list whose selection moves: small changes from step to step, as in a real
session.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from audit.records import Outcome, SessionInfo, Usage
from policies.decision import Decision
from sandbox.actions import Action, parse_action
from sandbox.base import Frame

if TYPE_CHECKING:
    from audit.log import AuditLog

WIDTH, HEIGHT = 1280, 800


@lru_cache(maxsize=2)
def _wallpaper(width: int, height: int) -> Image.Image:
    noise = Image.effect_noise((width // 4, height // 4), 60).filter(ImageFilter.GaussianBlur(2))
    noise = noise.resize((width, height), Image.Resampling.BICUBIC)
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (Image.blend(noise, gradient, 0.5),
                               noise.point(lambda v: 60 + v // 2),
                               gradient.point(lambda v: 200 - v // 3)))


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=14)


def desktop(step: int, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """The screen after ``step`` steps of a note-taking session."""
    image = _wallpaper(width, height).copy()
    draw = ImageDraw.Draw(image)
    font = _font()
    draw.rectangle((0, height - 32, width, height), fill=(40, 40, 48))
    draw.text((width - 90, height - 24), f"10:{step // 60:02d}:{step % 60:02d}", fill="white",
              font=font)
    _editor(draw, step, font)
    draw.rectangle((950, 150, 1200, 450), fill=(235, 235, 240), outline="gray")
    for row in range(10):
        marker = " <" if row == step % 10 else ""
        draw.text((960, 160 + row * 20), f"item {row}{marker}", fill="black", font=font)
    return image


def _editor(draw: ImageDraw.ImageDraw, step: int,
            font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    draw.rectangle((100, 80, 900, 600), fill="white", outline=(90, 90, 90))
    draw.rectangle((100, 80, 900, 108), fill=(60, 90, 160))
    draw.text((110, 86), f"notes.txt - Editor ({step // 4} lines)", fill="white", font=font)
    lines = [f"{n + 1:3d}  The quick brown fox jumps over the lazy dog, note {n}"
             for n in range(step // 4)]
    for row, line in enumerate(lines[-28:]):
        draw.text((110, 115 + row * 17), line, fill="black", font=font)


@lru_cache(maxsize=256)
def frame(step: int, width: int = WIDTH, height: int = HEIGHT) -> Frame:
    """The desktop as the sandbox would return it: a fast PNG."""
    out = io.BytesIO()
    desktop(step, width, height).save(out, "PNG", compress_level=1)
    return Frame.from_png(out.getvalue(), width, height, window_title="notes.txt - Editor",
                          cursor=(400, 300))


def frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> Iterator[Frame]:
    for step in range(count):
        yield frame(step, width, height)


def action_for(step: int) -> Action:
    """A plausible action for ``step``: clicks, typing, keys, a drag, scrolls."""
    choices: list[dict[str, object]] = [
        {"type": "click", "x": 400 + step % 7 * 20, "y": 200 + step % 5 * 30, "button": "left",
         "count": 1, "modifiers": []},
        {"type": "type", "text": f"note {step}"},
        {"type": "key", "keys": ["enter"], "repeat": 1},
        {"type": "drag", "path": [{"x": 300, "y": 300}, {"x": 420, "y": 340},
                                  {"x": 600, "y": 360}], "button": "left"},
        {"type": "scroll", "x": 1000, "y": 300, "dx": 0, "dy": 3, "modifiers": []},
    ]
    return parse_action(choices[step % len(choices)])


def session_info(task: str = "write ten notes in the editor") -> SessionInfo:
    return SessionInfo(task=task, planner="script", model="synthetic", policy_name="default",
                       policy_sha256="5e" * 32, sandbox_kind="fake", sandbox_image="",
                       screen_width=WIDTH, screen_height=HEIGHT, network=False)


def record_session(log: AuditLog, steps: int, *, task: str = "write ten notes in the editor",
                   ask_every: int = 7, outcome: Outcome = "done") -> str:
    """Write a finished session of ``steps`` executed steps; returns its id.

    Every ``ask_every``-th step is approved by a (made-up) human first.
    """
    session_id = log.start_session(session_info(task))
    before = log.put_frame(frame(0))
    for index in range(steps):
        ask = ask_every > 0 and index % ask_every == ask_every - 1
        decision = Decision(effect="ask" if ask else "allow",
                            rule_ids=("typing.ask",) if ask else ("gui.allow",),
                            reason="typing into an editor" if ask else "ordinary GUI action",
                            policy_sha256="5e" * 32)
        step_id = log.record_intent(session_id, index=index, action=action_for(index),
                                    proposed_raw=None, validation_error=None, decision=decision,
                                    frame_before_sha256=before, secret=False)
        if ask:
            approval = log.request_approval(step_id, frame_sha256=before, summary="type",
                                            rule_ids=decision.rule_ids, reason=decision.reason,
                                            timeout_s=60)
            log.answer_approval(approval, approved=True, scope="once", approver="ana@tty",
                                channel="terminal")
        after = log.put_frame(frame(index + 1))
        log.record_result(step_id, status="done", output={}, error=None,
                          frame_after_sha256=after,
                          timings_ms={"execute_ms": 12.0 + index % 5, "settle_ms": 30.0},
                          usage=Usage(input_tokens=1200, output_tokens=40, cost_usd=0.004))
        before = after
    log.end_session(session_id, outcome=outcome, reason="finished")
    return session_id
