"""Which tools a grant offers, and the descriptions a model reads (no SDK imports).

``--tools observe`` offers only tools that look; ``--tools act`` adds the
ones that change the desktop.  Anything else is refused at start-up: a
mistyped grant never means "everything".
"""

from __future__ import annotations

OBSERVE_TOOLS = frozenset({"screenshot", "read_screen", "wait_for_text", "session",
                           "await_approval"})
ACT_TOOLS = frozenset({"computer", "click_text"})
GRANTS: dict[str, frozenset[str]] = {"observe": OBSERVE_TOOLS, "act": OBSERVE_TOOLS | ACT_TOOLS}
# Tools that read the screen's text need the offline OCR (perception).
TEXT_TOOLS = frozenset({"read_screen", "wait_for_text", "click_text"})
READ_ONLY = OBSERVE_TOOLS


class UnknownGrant(ValueError):
    """A ``--tools`` value that names no grant."""


def granted_tools(grant: str, *, perception: bool) -> frozenset[str]:
    """The tool names ``grant`` offers; raises :class:`UnknownGrant` for anything unknown."""
    tools = GRANTS.get(grant)
    if tools is None:
        raise UnknownGrant(f"--tools: unknown grant {grant!r} (choose "
                           f"{' or '.join(sorted(GRANTS))}); nothing is granted by default")
    return tools if perception else tools - TEXT_TOOLS


COMPUTER_DESCRIPTION = """\
Act on the desktop with one action. `action` is an object with a `type` and its fields; \
every coordinate is in the pixels of the latest screenshot (see its size), never the \
screen's:
- {"type": "click", "x": 10, "y": 20, "button": "left"|"right"|"middle", "count": 1-3, \
"modifiers": ["ctrl"]}  (x/y omitted: click where the pointer is)
- {"type": "type", "text": "hello\\n"}  (exact text, any Unicode; "\\n" presses Enter)
- {"type": "key", "keys": ["ctrl", "alt", "t"], "repeat": 1}  (one combination)
- {"type": "hold_key", "keys": ["shift"], "seconds": 1}
- {"type": "mouse_move", "x": 10, "y": 20}
- {"type": "mouse_down", "button": "left"} / {"type": "mouse_up", "button": "left"}
- {"type": "drag", "path": [{"x": 10, "y": 20}, {"x": 200, "y": 220}]}
- {"type": "scroll", "x": 640, "y": 400, "dy": 3, "dx": 0}  (wheel notches; +dy is down)
- {"type": "wait", "seconds": 1}
- {"type": "zoom", "x0": 0, "y0": 0, "x1": 200, "y1": 100}  (that region at full resolution)
- {"type": "cursor_position"} / {"type": "screenshot"}
Every action is checked by a security policy and recorded in an audit log. A refused \
action comes back as an error naming the rule and reason: do not repeat it. Some actions \
wait for a human; if the answer takes long you get "approval pending" with a ticket for \
await_approval. With `screenshot` true (the default) the reply includes the screen after \
the action settled."""

DESCRIPTIONS: dict[str, str] = {
    "screenshot": "Take a screenshot of the desktop. The reply gives the image, its size "
                  "(use these pixels for every coordinate), the screen's real size and a "
                  "frame id. Images stay under 1 MB and 1568 px on the long side.",
    "computer": COMPUTER_DESCRIPTION,
    "click_text": "Find text on the screen with offline OCR and click its centre. Waits up to "
                  "`timeout` seconds for it to appear. `button` left/right/middle, `count` "
                  "1-3 (2 = double-click). Checked by the policy like any click.",
    "wait_for_text": "Wait until some text is visible on the screen (offline OCR), up to "
                     "`timeout` seconds; returns where it is in screenshot pixels.",
    "read_screen": "Read all text on the screen with offline OCR: each piece of text with "
                   "its box [x0, y0, x1, y1] in screenshot pixels. For clients without "
                   "images, or to find small print.",
    "session": "Describe this desktop session: the audit session id (for `deskhand replay`), "
               "the sandbox kind, screen and screenshot sizes, and the VNC address a human "
               "can watch it at.",
    "await_approval": "Collect the result of a call that answered 'approval pending' (or "
                      "'still running'), by its ticket. Waits while a human decides; may "
                      "answer 'approval pending' again.",
}
