"""A window that shows feedback at once after each click and finishes 300–800 ms later.

    python two_phase_app.py X Y WIDTH HEIGHT SEED

On the n-th click the window turns ``FEEDBACK`` at once (a button looking
pressed), then ``PALETTE[n % len(PALETTE)]`` a random 300–800 ms later (the
result arriving).  Tests click it and check that the frame the executor
returns shows the final colour, not the feedback.
"""

from __future__ import annotations

import random
import select
import sys
import time
from typing import Any

from Xlib import X, display

PALETTE = [0xD62728, 0x2CA02C, 0x1F77B4, 0xFF7F0E, 0x9467BD, 0x17BECF, 0x8C564B]
FEEDBACK = 0x7F7F7F
MIN_DELAY_S, MAX_DELAY_S = 0.3, 0.8


def paint(conn: Any, window: Any, gc: Any, color: int, size: tuple[int, int]) -> None:
    gc.change(foreground=color)
    window.fill_rectangle(gc, 0, 0, *size)
    conn.flush()


def main() -> None:
    x, y, width, height, seed = map(int, sys.argv[1:6])
    rng = random.Random(seed)
    conn = display.Display()
    screen = conn.screen()
    window = screen.root.create_window(
        x, y, width, height, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
        background_pixel=screen.black_pixel, override_redirect=True,
        event_mask=X.ButtonPressMask | X.ExposureMask)
    gc = window.create_gc(foreground=PALETTE[0])
    window.map()
    clicks, color = 0, PALETTE[0]
    due: float | None = None
    paint(conn, window, gc, color, (width, height))
    while True:
        if not conn.pending_events():
            timeout = None if due is None else max(0.0, due - time.monotonic())
            select.select([conn.fileno()], [], [], timeout)
        while conn.pending_events():
            kind = conn.next_event().type
            if kind == X.ButtonPress:
                clicks += 1
                color = FEEDBACK
                due = time.monotonic() + rng.uniform(MIN_DELAY_S, MAX_DELAY_S)
            paint(conn, window, gc, color, (width, height))
        if due is not None and time.monotonic() >= due:
            color, due = PALETTE[clicks % len(PALETTE)], None
            paint(conn, window, gc, color, (width, height))


if __name__ == "__main__":
    main()
