"""Screen-to-keyboard taint: is the planner typing something it read on screen?

An injection that gets past the detector still has to make the agent *do*
something, and the doing is mostly typing what the page said: a command, a
URL, an e-mail address, an amount, a key.  :func:`find_typed_on_screen`
answers, for typed text, whether it is one of those kinds, whether it
appears on the current or a recent screen (as the OCR read it), and whether
the task did not ask for it — and if so, where on screen it was.  The loop
puts the answer in ``PolicyContext.typed_from_screen``; the default policy
asks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from agent.perception.screen import TextElement, find_text, phrases
from policies.decision import TypedFromScreen
from policies.detectors import DETECTORS

# Typed text shorter than this (squashed) is too common to trace: "ls", "42".
MIN_TRACED_CHARS = 6
# Share of the typed characters that must match a phrase, in order, when
# OCR misread a few of them.
_FUZZY_MATCH = 0.9

_COMMAND_WORDS = (
    "sudo|su|rm|rmdir|curl|wget|chmod|chown|bash|sh|zsh|python3?|perl|ruby|node|ssh|scp|rsync"
    "|git|npm|pip3?|apt|apt-get|dnf|yum|nc|ncat|echo|cat|touch|mkdir|mv|cp|dd|kill|pkill"
    "|killall|systemctl|crontab|export|eval|base64|tar|unzip|docker|kubectl|history|shutdown"
    "|reboot|mkfs|useradd|passwd|open|xdg-open|powershell|cmd|del|format|reg|net")
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("URL", re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+\.\S+"
                       r"|\b[\w-]+(\.[\w-]+)*\.(com|net|org|io|ru|cn|xyz|top|biz|info|app"
                       r"|link|cc|me|co|de|fr|es|it|jp|br)(/\S*)?\b", re.IGNORECASE)),
    ("e-mail address", re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")),
    ("money amount", re.compile(
        r"[$€£¥₽]\s?\d[\d.,\s]*\d|\b\d[\d.,\s]*\s?(usd|eur|gbp|chf|rub|dollars?|euros?|€|₽)\b"
        r"|\b[A-Z]{2}\d{2}(\s?[A-Z0-9]{4}){3,7}\b", re.IGNORECASE)),
    ("command", re.compile(rf"(^|[\n;&|]\s*|\$\s+)({_COMMAND_WORDS})\b|\|\s*(ba|z)?sh\b"
                           r"|&&|\$\(|`[^`]+`", re.IGNORECASE)),
)


def typed_kind(text: str) -> str | None:
    """What kind of sensitive text this is, or None for ordinary words."""
    if any(detector.found_in(text) for detector in DETECTORS.values()):
        return "credential"
    return next((kind for kind, pattern in _KINDS if pattern.search(text)), None)


def find_typed_on_screen(text: str, task: str,
                         screens: Sequence[tuple[str, Sequence[TextElement]]],
                         ) -> TypedFromScreen | None:
    """Where ``text`` was shown, when it is sensitive, on a screen, and not in the task.

    ``screens`` are ``(frame sha256, words)`` pairs, the current screen first.
    """
    needle = _longest_line(text)
    if len(_squash(needle)) < MIN_TRACED_CHARS or _squash(needle) in _squash(task):
        return None
    kind = typed_kind(text)
    if kind is None:
        return None
    for frame_sha256, elements in screens:
        box = _shown_at(elements, needle)
        if box is not None:
            return TypedFromScreen(kind=kind, box=box, frame_sha256=frame_sha256)
    return None


def _shown_at(elements: Sequence[TextElement], needle: str) -> tuple[int, int, int, int] | None:
    found = find_text(elements, needle)
    if found is not None:
        return found.box
    squashed = _squash(needle)
    for run in phrases(elements):
        if _mostly_contains(_squash(" ".join(word.text for word in run)), squashed):
            return (min(w.x0 for w in run), min(w.y0 for w in run),
                    max(w.x1 for w in run), max(w.y1 for w in run))
    return None


def _mostly_contains(haystack: str, needle: str) -> bool:
    """Whether ``needle`` appears in ``haystack`` with a few characters misread."""
    if len(haystack) < len(needle) * _FUZZY_MATCH:
        return False
    matcher = difflib.SequenceMatcher(None, needle, haystack, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return matched >= _FUZZY_MATCH * len(needle)


def _longest_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return max(lines, key=len) if lines else ""


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()
