"""A window that repaints itself a random 0–800 ms after each click.

    python late_redraw_app.py X Y WIDTH HEIGHT SEED

After the n-th click the whole window turns ``PALETTE[n % len(PALETTE)]``;
until then it keeps the previous colour.  Tests click it and check that the
frame the executor returns already shows the new colour.
"""

from __future__ import annotations

import random
import select
import sys
import time
from typing import Any

from Xlib import X, display

PALETTE = [0xD62728, 0x2CA02C, 0x1F77B4, 0xFF7F0E, 0x9467BD, 0x17BECF, 0x8C564B]
MAX_DELAY_S = 0.8


def paint(conn: Any, window: Any, gc: Any, clicks: int, size: tuple[int, int]) -> None:
    gc.change(foreground=PALETTE[clicks % len(PALETTE)])
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
    clicks, shown = 0, 0
    due: float | None = time.monotonic()  # paint the initial colour right away
    while True:
        if not conn.pending_events():
            timeout = None if due is None else max(0.0, due - time.monotonic())
            select.select([conn.fileno()], [], [], timeout)
        while conn.pending_events():
            kind = conn.next_event().type
            if kind == X.ButtonPress:
                clicks += 1
                due = time.monotonic() + rng.uniform(0.0, MAX_DELAY_S)
            elif kind == X.Expose:
                paint(conn, window, gc, shown, (width, height))
        if due is not None and time.monotonic() >= due:
            shown, due = clicks, None
            paint(conn, window, gc, shown, (width, height))


if __name__ == "__main__":
    main()
