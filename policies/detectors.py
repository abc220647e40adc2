"""Named detectors for typed text that looks like a secret.

A policy rule lists detectors by name (``match.detectors``); a detector only
answers *whether* the text looks like its kind of secret, never *what* the
secret is, so explanations can say why without repeating it.

Most detectors recognise the published shape of a credential (``sk-ant-...``,
``AKIA...``, ``ghp_...``, JWTs, PEM private-key blocks).  ``high_entropy`` is a
heuristic for passwords and random tokens that have no fixed shape: it looks
for words that mix character classes the way generated secrets do and that
plain words, file names, URLs and code mostly do not.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.secrets import without_placeholders


@dataclass(frozen=True, slots=True)
class Detector:
    """A named test for one kind of secret."""

    name: str
    description: str
    found_in: Callable[[str], bool]


def _shaped(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda text: compiled.search(text) is not None


_OPENAI = r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
_ANTHROPIC = r"\bsk-ant-[A-Za-z0-9_-]{20,}"
_AWS_ACCESS = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[0-9A-Z]{16}\b"
_AWS_SECRET = (
    r"(?i)\baws.{0,24}?(?:secret|key)\S{0,16}?\s*[=:]\s*['\"]?"
    r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
_GITHUB = r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"
_SLACK = r"\bxox[abposr]-[A-Za-z0-9-]{10,}"
_GOOGLE = r"\bAIza[0-9A-Za-z_-]{35}"
_STRIPE = r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"
_JWT = r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
_PRIVATE_KEY = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_ASSIGNMENT = (
    r"(?i)(?<![a-z])(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?token"
    r"|auth[_-]?token|client[_-]?secret)\b['\"]?\s*[:=]\s*['\"]?[^\s'\"]{4,}"
)

# Edges that are punctuation around a word rather than part of it.
_EDGE_PUNCTUATION = "\"'`.,;:!?()[]{}<>"
_URL_OR_PATH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.|~?/|\.{1,2}/)", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def _char_class(char: str) -> int:
    if char.isdigit():
        return 0
    if char.islower():
        return 1
    if char.isupper():
        return 2
    return 3


def _entropy_bits(word: str) -> float:
    """Shannon entropy per character of ``word``."""
    size = len(word)
    return -sum(n / size * math.log2(n / size) for n in Counter(word).values())


def _class_switch_rate(classes: list[int]) -> float:
    # Generated secrets hop between letters, digits and symbols; words and
    # identifiers change class only at a few boundaries (Report2024, snake_case).
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    return switches / len(classes)


def _looks_generated(word: str) -> bool:
    if len(word) < 8 or len(word) > 256 or _URL_OR_PATH.match(word) or _EMAIL.match(word):
        return False
    classes = [_char_class(c) for c in word]
    kinds = set(classes)
    switching = _class_switch_rate(classes)
    if {0, 1, 2} <= kinds and switching >= 0.3:
        # Short words cannot reach 3 bits per character; ask for most of what
        # their length allows (this rejects repeats such as Aa1Aa1Aa1).
        return _entropy_bits(word) >= min(3.0, 0.85 * math.log2(len(word)))
    if len(word) >= 20 and 0 in kinds and kinds & {1, 2} and switching >= 0.35:
        return _entropy_bits(word) >= 3.5
    return False


def looks_high_entropy(text: str) -> bool:
    """Whether any whitespace-separated word of ``text`` looks like a password or token."""
    return any(_looks_generated(word.strip(_EDGE_PUNCTUATION)) for word in text.split())


DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector("openai_key", "an OpenAI API key (sk-...)", _shaped(_OPENAI)),
        Detector("anthropic_key", "an Anthropic API key (sk-ant-...)", _shaped(_ANTHROPIC)),
        Detector("aws_access_key", "an AWS access key id (AKIA...)", _shaped(_AWS_ACCESS)),
        Detector("aws_secret_key", "an AWS secret access key", _shaped(_AWS_SECRET)),
        Detector("github_token", "a GitHub token (ghp_..., github_pat_...)", _shaped(_GITHUB)),
        Detector("slack_token", "a Slack token (xox...)", _shaped(_SLACK)),
        Detector("google_api_key", "a Google API key (AIza...)", _shaped(_GOOGLE)),
        Detector("stripe_key", "a Stripe secret key (sk_live_...)", _shaped(_STRIPE)),
        Detector("jwt", "a JSON Web Token (eyJ...)", _shaped(_JWT)),
        Detector("private_key", "a private-key block (-----BEGIN ... PRIVATE KEY-----)",
                 _shaped(_PRIVATE_KEY)),
        Detector("password_assignment", "a password or token assignment (password=...)",
                 _shaped(_ASSIGNMENT)),
        Detector("high_entropy", "a password-like or random token", looks_high_entropy),
    )
}


def secret_parts(text: str) -> list[str]:
    """What of secret typed text to hunt for elsewhere (stored strings, the screen).

    The text itself (trimmed), each of its words that looks like a secret,
    and what follows ``=`` or ``:`` in such a word: a shell echoes ``$KEY``
    without the ``KEY=`` it was set with, and its shell gate sees the line
    without the Return that was typed.  Other words (``export``) are left
    out: they would blank innocent text, and so are placeholders
    (``{{secret:NAME}}`` names a secret, it is not one).
    """
    parts = [text, text.strip()]
    for word in without_placeholders(text).split():
        if any(detector.found_in(word) for detector in DETECTORS.values()):
            parts += [word, re.split(r"[=:]", word)[-1]]
    return list(dict.fromkeys(part for part in parts if part))
