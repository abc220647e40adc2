"""Which way the terminal can show pictures: real pixels or half blocks.

``textual-image`` asks the terminal (Kitty graphics protocol, Sixel) when it
is imported, and that only works before Textual takes over the terminal; so
the CLI calls :func:`detect_graphics` once, before the app starts, and the
app is told the answer.
"""

from __future__ import annotations

import sys
from typing import Literal

Graphics = Literal["halfblock", "kitty", "sixel"]
GRAPHICS_CHOICES = ("auto", "halfblock", "kitty", "sixel")


def detect_graphics(choice: str = "auto") -> Graphics:
    """Resolve ``choice``; ``auto`` probes the terminal and falls back to half blocks."""
    if choice == "halfblock":
        return "halfblock"
    if choice in {"kitty", "sixel"}:
        return "kitty" if choice == "kitty" else "sixel"
    stdout = sys.__stdout__
    if stdout is None or not stdout.isatty():
        return "halfblock"
    return _probe_terminal()


def _probe_terminal() -> Graphics:
    try:
        from textual_image import renderable
    except ImportError:
        return "halfblock"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    return "halfblock"
