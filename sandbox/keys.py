"""Canonical key names and the aliases that planners use for them.

Every key that reaches the sandbox is one of the canonical names below, in
lower case.  Planners speak different dialects (xdotool keysyms from Claude,
``CTRL``/``ENTER`` from OpenAI, ``cmd`` from people); :func:`normalize_key`
maps them all onto one vocabulary so that the policy engine matches a single
spelling and the executor knows exactly which X keysym to press.
"""

from __future__ import annotations

import string

MODIFIERS: frozenset[str] = frozenset({"ctrl", "alt", "shift", "super"})

_NAMED: frozenset[str] = frozenset(
    {
        "enter", "escape", "tab", "backspace", "delete", "insert", "space",
        "home", "end", "pageup", "pagedown", "up", "down", "left", "right",
        "menu", "printscreen", "pause", "capslock", "numlock", "scrolllock",
        "kp_enter", "kp_add", "kp_subtract", "kp_multiply", "kp_divide", "kp_decimal",
        *(f"kp_{d}" for d in range(10)),
        *(f"f{n}" for n in range(1, 25)),
        "volumeup", "volumedown", "volumemute",
    }
)

# Printable single characters are keys too (``ctrl+c``, ``shift+/``).
_PRINTABLE: frozenset[str] = frozenset(
    c for c in string.ascii_lowercase + string.digits + string.punctuation
)

CANONICAL_KEYS: frozenset[str] = MODIFIERS | _NAMED | _PRINTABLE

_ALIASES: dict[str, str] = {
    # modifiers
    "control": "ctrl", "control_l": "ctrl", "control_r": "ctrl", "ctl": "ctrl",
    "alt_l": "alt", "alt_r": "alt", "option": "alt", "meta": "super", "meta_l": "super",
    "shift_l": "shift", "shift_r": "shift",
    "super_l": "super", "super_r": "super", "cmd": "super", "command": "super",
    "win": "super", "windows": "super",
    # named keys in xdotool / X keysym spelling
    "return": "enter", "kp_return": "kp_enter", "esc": "escape",
    "backspace": "backspace", "back_space": "backspace", "bksp": "backspace",
    "del": "delete", "ins": "insert",
    "prior": "pageup", "page_up": "pageup", "pgup": "pageup",
    "next": "pagedown", "page_down": "pagedown", "pgdn": "pagedown",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "print": "printscreen", "caps_lock": "capslock", "num_lock": "numlock",
    "scroll_lock": "scrolllock",
    "xf86audioraisevolume": "volumeup", "xf86audiolowervolume": "volumedown",
    "xf86audiomute": "volumemute",
    # punctuation keysym names
    "minus": "-", "plus": "+", "equal": "=", "comma": ",", "period": ".",
    "slash": "/", "backslash": "\\", "semicolon": ";", "apostrophe": "'",
    "grave": "`", "bracketleft": "[", "bracketright": "]", "quotedbl": '"',
    "exclam": "!", "at": "@", "numbersign": "#", "dollar": "$", "percent": "%",
    "asciicircum": "^", "ampersand": "&", "asterisk": "*", "parenleft": "(",
    "parenright": ")", "underscore": "_", "braceleft": "{", "braceright": "}",
    "bar": "|", "colon": ":", "less": "<", "greater": ">", "question": "?",
    "asciitilde": "~",
}


class UnknownKeyError(ValueError):
    """A key name that deskhand does not know how to press."""


def normalize_key(name: str) -> str:
    """Return the canonical spelling of one key, or raise :class:`UnknownKeyError`."""
    if name == " ":
        return "space"
    if len(name) == 1 and name.lower() in _PRINTABLE:
        return name.lower()
    lowered = name.strip().lower()
    canonical = _ALIASES.get(lowered, lowered)
    if canonical not in CANONICAL_KEYS:
        raise UnknownKeyError(f"unknown key {name!r}")
    return canonical


def parse_combo(combo: str) -> list[str]:
    """Split an xdotool-style combo such as ``ctrl+shift+t`` into canonical keys.

    A literal plus is written ``ctrl+plus`` (or as the last element, ``ctrl++``).
    """
    text = combo.strip()
    if not text:
        raise UnknownKeyError("empty key combination")
    if text.endswith("++"):
        parts = [*text[:-2].split("+"), "+"] if len(text) > 2 else ["+"]
    elif text == "+":
        parts = ["+"]
    else:
        parts = text.split("+")
    if any(part == "" for part in parts):
        raise UnknownKeyError(f"malformed key combination {combo!r}")
    return [normalize_key(part) for part in parts]
