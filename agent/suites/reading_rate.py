"""How often text matching finds what a real desktop shows, and how often it finds what it
does not show: the match rate and false-match rate of :mod:`agent.suites.textmatch` on
real frames, beside the plain case-and-space-insensitive search as the baseline.

Tokens such as ``KEEP-OK-42`` are printed in an xterm (its small bitmap font
is where the OCR confuses O/0 and l/1); each absent token differs from a
shown one by one digit the OCR does not confuse, so a match would be false.
"""

from __future__ import annotations

import random
import shlex
from dataclasses import dataclass

from agent.perception import textmatch
from agent.perception.screen import find_text
from agent.suites import specs
from agent.suites.checks import Checker, ScreenReader
from sandbox.base import Frame, Sandbox

_WORDS = ("KEEP", "SAVE", "OPEN", "LOAD", "FILE", "NOTE", "MOVE", "COPY", "SEND", "READ",
          "list", "modern", "total", "cell", "roll", "burn")
_MIDDLE = ("OK", "ON", "IO", "OL", "ll", "rn", "x1", "b0")
# Digits swapped for ones the OCR never reads alike.
_SWAP = {"2": "7", "3": "8", "4": "9", "5": "2", "6": "3", "7": "4", "8": "5", "9": "6"}


@dataclass(frozen=True, slots=True)
class ReadingRates:
    shown: int
    absent: int
    matched: int
    false_matches: int
    baseline_matched: int
    baseline_false_matches: int
    misses: tuple[str, ...]

    @property
    def match_rate(self) -> float:
        return self.matched / self.shown

    @property
    def false_match_rate(self) -> float:
        return self.false_matches / self.absent

    @property
    def baseline_match_rate(self) -> float:
        return self.baseline_matched / self.shown

    @property
    def baseline_false_match_rate(self) -> float:
        return self.baseline_false_matches / self.absent


def tokens(count: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """``count`` tokens to show and as many absent look-alikes."""
    rng = random.Random(seed)
    shown: list[str] = []
    while len(shown) < count:
        token = f"{rng.choice(_WORDS)}-{rng.choice(_MIDDLE)}-{rng.randint(22, 99)}"
        if token not in shown:
            shown.append(token)
    absent = [t[:-1] + _SWAP.get(t[-1], "3") for t in shown]
    return shown, absent


def measure(sandbox: Sandbox, reader: ScreenReader, count: int = 30) -> ReadingRates:
    """Show ``count`` tokens in an xterm in ``sandbox`` and read them back."""
    shown, absent = tokens(count)
    checker = Checker(sandbox, reader)
    text = "\n".join(shown) + "\n"
    sandbox.check(["sh", "-c", f"printf %s {shlex.quote(text)} > ~/tokens.txt"])
    sandbox.check(["sh", "-c", "nohup xterm -title tokens -geometry 90x40+0+0 -e sh -c "
                   "'cat ~/tokens.txt; sleep 600' >/dev/null 2>&1 &"])
    checker.poll("wait_for_window", specs.WindowSpec(title="^tokens$", timeout=20))
    last = shown[-1]
    checker.poll("wait_for_text", specs.TextSpec(text=last, timeout=10))
    elements = reader.parse(stable_frame(sandbox))
    found = [textmatch.find(elements, t) is not None for t in shown]
    false = [textmatch.find(elements, t) is not None for t in absent]
    plain = [find_text(elements, t) is not None for t in shown]
    plain_false = [find_text(elements, t) is not None for t in absent]
    return ReadingRates(shown=len(shown), absent=len(absent), matched=sum(found),
                        false_matches=sum(false), baseline_matched=sum(plain),
                        baseline_false_matches=sum(plain_false),
                        misses=tuple(t for t, ok in zip(shown, found, strict=True) if not ok))


def stable_frame(sandbox: Sandbox, tries: int = 40) -> Frame:
    """The first frame equal to the one before it (the screen stopped changing)."""
    previous = sandbox.screenshot()
    for _ in range(tries):
        current = sandbox.screenshot()
        if current.sha256 == previous.sha256:
            return current
        previous = current
    return previous
