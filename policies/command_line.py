"""The input line a window's shell is being given, rebuilt from the actions sent to it.

A planner can type a command in pieces (``rm -`` then ``rf ~/keep``), key by
key, or without its newline and then press Return.  :class:`LineTracker`
keeps, per window title, the line being edited the way readline edits it —
text inserted at a cursor, BackSpace, Delete, ctrl+h, ctrl+u, ctrl+k, ctrl+w,
ctrl+a/ctrl+e/Home/End/Left/Right, ctrl+c — and reports each line the action
*submits* (a newline in typed text, Return or KP_Enter).  A line that ends in
a continuation (a trailing backslash) is carried into the next one, as the
shell does.

Some edits cannot be followed from the keys alone: history recall (Up,
Down, ctrl+p, ctrl+n, ctrl+r, PageUp in some shells), tab completion, word
motions, and a paste whose text is not known.  The line is then *unknown*:
the tracker still keeps its best guess (the text it saw typed), and says why
it is unknown (:data:`UNKNOWN_REASONS`), so that rules can ask.

Pure: the tracker sees actions and the pasted text the caller read; it does
no I/O.  :meth:`LineTracker.propose` works out what an action would do
without changing anything; :meth:`LineTracker.commit` applies it once the
action really ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sandbox.actions import Action, Click, Key, TypeText

# Why a line could not be rebuilt exactly.
UNKNOWN_REASONS: tuple[str, ...] = ("history", "completion", "command_completion", "motion",
                                    "paste")
PASTE_COMBOS: frozenset[frozenset[str]] = frozenset({
    frozenset({"ctrl", "v"}), frozenset({"ctrl", "shift", "v"}), frozenset({"shift", "insert"}),
})
SUBMIT_KEYS: frozenset[str] = frozenset({"enter", "kp_enter"})
_HISTORY_KEYS = frozenset({"up", "down", "pageup", "pagedown"})
_HISTORY_CTRL = frozenset({"p", "n", "r", "s", "o"})
_KEYPAD = {"kp_add": "+", "kp_subtract": "-", "kp_multiply": "*", "kp_divide": "/",
           "kp_decimal": ".", **{f"kp_{d}": str(d) for d in range(10)}}
_SHIFTED = dict(zip("`1234567890-=[]\\;',./", '~!@#$%^&*()_+{}|:"<>?', strict=True))


@dataclass(frozen=True, slots=True)
class LineState:
    """One window's line: its text, the cursor in it, and whether it is known exactly."""

    text: str = ""
    cursor: int = 0
    unknown: tuple[str, ...] = ()
    continued: str = ""  # earlier lines ended with a backslash, still waiting for the rest
    killed: str = ""  # what ctrl+u/ctrl+k/ctrl+w last cut, for ctrl+y

    @property
    def known(self) -> bool:
        return not self.unknown


@dataclass(frozen=True, slots=True)
class Submission:
    """A line the action hands to the shell; ``unknown`` says why it may be wrong."""

    text: str
    unknown: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return not self.unknown


@dataclass(frozen=True, slots=True)
class LineView:
    """What one action does to its window's line: the state after and the lines it submits."""

    window: str
    after: LineState
    submitted: tuple[Submission, ...] = ()
    pasted: str | None = None

    @property
    def submitted_line(self) -> str | None:
        """Every line this action submits, joined by newlines (``None``: it submits none)."""
        if not self.submitted:
            return None
        return "\n".join(s.text for s in self.submitted)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Why any submitted line (or, if none, the line being built) is not known exactly."""
        reasons = [r for s in self.submitted for r in s.unknown] or list(
            () if self.submitted else self.after.unknown)
        return tuple(dict.fromkeys(reasons))


def is_paste(action: Action) -> bool:
    """Whether ``action`` pastes: a paste key combination or a middle click."""
    if isinstance(action, Key):
        return frozenset(action.keys) in PASTE_COMBOS
    return isinstance(action, Click) and action.button == "middle"


def paste_selection(action: Action) -> str:
    """Which selection ``action`` pastes: ``primary`` for a middle click or shift+Insert."""
    if isinstance(action, Click) or (isinstance(action, Key) and "insert" in action.keys):
        return "primary"
    return "clipboard"


class LineTracker:
    """Per-window input lines, rebuilt action by action."""

    def __init__(self) -> None:
        self._lines: dict[str, LineState] = {}
        self._proposed: LineView | None = None

    def line(self, window: str) -> LineState:
        return self._lines.get(window, LineState())

    def propose(self, window: str, action: Action, pasted: str | None = None) -> LineView:
        """What ``action`` would do to ``window``'s line; ``pasted`` is the text a paste inserts."""
        view = apply(self.line(window), action, pasted)
        self._proposed = LineView(window, view.after, view.submitted, pasted)
        return self._proposed

    def commit(self) -> None:
        """Apply the last proposal: its action ran."""
        if self._proposed is not None:
            self._lines[self._proposed.window] = self._proposed.after
            self._proposed = None


def replay(actions: list[Action], window: str = "") -> list[LineView]:
    """Every action's view, applying each in turn (for ``policy explain`` and tests)."""
    tracker = LineTracker()
    views = []
    for action in actions:
        views.append(tracker.propose(window, action))
        tracker.commit()
    return views


def apply(state: LineState, action: Action, pasted: str | None = None) -> LineView:
    """``state`` after ``action``, and the lines it submitted."""
    if isinstance(action, TypeText):
        return _insert_text(state, action.text)
    if is_paste(action):
        if pasted is None:
            return LineView("", _mark(state, "paste"))
        return _insert_text(state, pasted)
    if isinstance(action, Key):
        submitted: list[Submission] = []
        for _ in range(action.repeat):
            state, line = _press(state, action.keys)
            if line is not None:
                submitted.append(line)
        return LineView("", state, tuple(submitted))
    return LineView("", state)


def _insert_text(state: LineState, text: str) -> LineView:
    submitted: list[Submission] = []
    for char in text.replace("\r\n", "\n").replace("\r", "\n"):
        if char == "\n":
            state, line = _submit(state)
            submitted.append(line)
        elif char == "\t":
            state = _complete(state)
        elif char in _CONTROL_CHARS:
            state = _CONTROL_CHARS[char](state)
        elif ord(char) < 0x20 or char == "\x7f":
            state = _mark(state, "motion")  # escape sequences and other bindings
        else:
            state = _insert(state, char)
    return LineView("", state, tuple(submitted))


def _insert(state: LineState, chars: str) -> LineState:
    text = state.text[:state.cursor] + chars + state.text[state.cursor:]
    return replace(state, text=text, cursor=state.cursor + len(chars))


def _submit(state: LineState) -> tuple[LineState, Submission]:
    whole = state.continued + state.text
    line = Submission(whole, state.unknown)
    if state.text.endswith("\\") and state.known:
        return LineState(continued=whole[:-1], killed=state.killed), line
    return LineState(killed=state.killed), line


def _mark(state: LineState, reason: str) -> LineState:
    if reason in state.unknown:
        return state
    return replace(state, unknown=(*state.unknown, reason))


def _complete(state: LineState) -> LineState:
    before = state.text[:state.cursor].lstrip()
    in_command_name = not any(c.isspace() for c in before)
    return _mark(state, "command_completion" if in_command_name else "completion")


def _press(state: LineState, keys: list[str]) -> tuple[LineState, Submission | None]:
    held = set(keys)
    main = [k for k in keys if k not in {"ctrl", "alt", "shift", "super"}]
    if len(main) != 1:
        return state, None  # modifiers alone type nothing
    key = main[0]
    if "super" in held or {"ctrl", "alt"} <= held or {"ctrl", "shift"} <= held:
        return state, None  # desktop and terminal shortcuts: they never reach the shell
    if "alt" in held:
        return _mark(state, "motion"), None  # meta bindings: word motions, history, ...
    if "ctrl" in held:
        return _control(state, key)
    if key in SUBMIT_KEYS:
        state, line = _submit(state)
        return state, line
    return _plain(state, key, "shift" in held), None


def _plain(state: LineState, key: str, shift: bool) -> LineState:
    if key in _HISTORY_KEYS:
        return _history(state)
    if key == "tab":
        return _complete(state)
    if key == "escape":
        return _mark(state, "motion")  # ESC then a key is a meta binding (ESC b, ESC .)
    edit = _EDIT_KEYS.get(key)
    if edit is not None:
        return edit(state)
    char = _character(key, shift)
    return _insert(state, char) if char is not None else state


def _character(key: str, shift: bool) -> str | None:
    if key == "space":
        return " "
    if key in _KEYPAD:
        return _KEYPAD[key]
    if len(key) != 1:
        return None  # escape, function keys ...: nothing typed
    if shift:
        return key.upper() if key.isalpha() else _SHIFTED.get(key, key)
    return key


def _history(state: LineState) -> LineState:
    return _mark(replace(state, text="", cursor=0), "history")


def _backspace(state: LineState) -> LineState:
    if state.cursor == 0:
        return state
    return replace(state, text=state.text[:state.cursor - 1] + state.text[state.cursor:],
                   cursor=state.cursor - 1)


def _delete(state: LineState) -> LineState:
    return replace(state, text=state.text[:state.cursor] + state.text[state.cursor + 1:])


def _left(state: LineState) -> LineState:
    return replace(state, cursor=max(0, state.cursor - 1))


def _right(state: LineState) -> LineState:
    return replace(state, cursor=min(len(state.text), state.cursor + 1))


def _home(state: LineState) -> LineState:
    return replace(state, cursor=0)


def _end(state: LineState) -> LineState:
    return replace(state, cursor=len(state.text))


def _kill_to_start(state: LineState) -> LineState:
    return replace(state, text=state.text[state.cursor:], cursor=0,
                   killed=state.text[:state.cursor])


def _kill_to_end(state: LineState) -> LineState:
    return replace(state, text=state.text[:state.cursor], killed=state.text[state.cursor:])


def _kill_word(state: LineState) -> LineState:
    # readline's unix-word-rubout: back over blanks, then over non-blanks.
    start = state.cursor
    while start > 0 and state.text[start - 1].isspace():
        start -= 1
    while start > 0 and not state.text[start - 1].isspace():
        start -= 1
    return replace(state, text=state.text[:start] + state.text[state.cursor:], cursor=start,
                   killed=state.text[start:state.cursor])


def _yank(state: LineState) -> LineState:
    return _insert(state, state.killed)


def _interrupt(state: LineState) -> LineState:
    return LineState(killed=state.killed)  # ctrl+c abandons the line and any continuation


def _unchanged(state: LineState) -> LineState:
    return state


_Edit = Callable[[LineState], LineState]
_EDIT_KEYS: dict[str, _Edit] = {
    "backspace": _backspace, "delete": _delete, "left": _left, "right": _right,
    "home": _home, "end": _end, "insert": _unchanged,
}
_CONTROL_EDITS: dict[str, _Edit] = {
    "h": _backspace, "d": _delete, "b": _left, "f": _right, "a": _home, "e": _end,
    "u": _kill_to_start, "k": _kill_to_end, "w": _kill_word, "y": _yank, "c": _interrupt,
    "l": _unchanged, "g": _unchanged,
}


# Control characters inside typed text act like their keys.
_CONTROL_CHARS: dict[str, _Edit] = {
    "\x08": _backspace, "\x7f": _backspace, "\x15": _kill_to_start, "\x0b": _kill_to_end,
    "\x17": _kill_word, "\x03": _interrupt, "\x01": _home, "\x05": _end,
}


def _control(state: LineState, key: str) -> tuple[LineState, Submission | None]:
    if key in {"j", "m"}:
        return _submit(state)
    if key in _HISTORY_CTRL:
        return _history(state), None
    if key in {"left", "right"}:
        return _mark(state, "motion"), None  # word motions
    edit = _CONTROL_EDITS.get(key)
    if edit is not None:
        return edit(state), None
    return _mark(state, "motion"), None  # other bindings (ctrl+t transposes, ctrl+x ...)
