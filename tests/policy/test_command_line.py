"""The input line rebuilt across actions, the way readline edits it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.command_line import LineTracker, is_paste, paste_selection, replay
from sandbox.actions import Action, Click, Key, TypeText


def key(*keys: str, repeat: int = 1) -> Key:
    return Key(keys=list(keys), repeat=repeat)


def submitted(*actions: Action) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.text, s.unknown) for view in replay(list(actions)) for s in view.submitted]


def test_pieces_keys_and_return_make_one_line() -> None:
    assert submitted(TypeText(text="rm -"), key("r"), key("f"), key("space"),
                     key("shift", "grave"), TypeText(text="/keep"), key("Return")) == [
        ("rm -rf ~/keep", ())]


def test_editing_keys_edit_at_the_cursor() -> None:
    assert submitted(TypeText(text="ls -r x"), key("Home"), key("Delete", repeat=2),
                     TypeText(text="rm"), key("End"), key("BackSpace"), TypeText(text="y"),
                     key("KP_Enter")) == [("rm -r y", ())]


def test_kill_and_yank_keys() -> None:
    assert submitted(TypeText(text="echo a b"), key("ctrl", "w"), key("ctrl", "w"),
                     TypeText(text="z"), key("ctrl", "a"), key("ctrl", "k"), key("ctrl", "y"),
                     key("ctrl", "u"), key("ctrl", "y"), key("ctrl", "j")) == [("echo z", ())]


def test_shift_types_the_upper_row_of_a_us_keyboard() -> None:
    assert submitted(key("shift", "a"), key("shift", "7"), key("shift", "minus"),
                     key("kp_5"), key("ctrl", "m")) == [("A&_5", ())]


def test_ctrl_c_abandons_the_line() -> None:
    assert submitted(TypeText(text="rm -rf x"), key("ctrl", "c"), TypeText(text="ls\n")) == [
        ("ls", ())]


def test_a_continued_line_is_submitted_with_the_rest() -> None:
    assert submitted(TypeText(text="rm x \\\n"), TypeText(text="-r\n")) == [
        ("rm x \\", ()), ("rm x -r", ())]


def test_several_newlines_submit_several_lines() -> None:
    assert submitted(TypeText(text="ls\r\npwd\n")) == [("ls", ()), ("pwd", ())]


def test_what_cannot_be_followed_makes_the_line_unknown() -> None:
    assert submitted(key("Up"), key("Return")) == [("", ("history",))]
    assert submitted(TypeText(text="shre\t -u f\n")) == [("shre -u f", ("command_completion",))]
    assert submitted(TypeText(text="cat Doc"), key("Tab"), key("Return")) == [
        ("cat Doc", ("completion",))]
    assert submitted(TypeText(text="rm x"), key("alt", "b"), key("Return")) == [
        ("rm x", ("motion",))]
    assert submitted(key("ctrl", "shift", "v"), key("Return")) == [("", ("paste",))]


def test_control_characters_in_typed_text_edit_like_their_keys() -> None:
    assert submitted(TypeText(text="echo safe\x15rm -r x\n")) == [("rm -r x", ())]
    assert submitted(TypeText(text="ls\x08\x08rm -r x\n")) == [("rm -r x", ())]
    assert submitted(TypeText(text="rm x\x1bb-r \n")) == [("rm xb-r ", ("motion",))]
    assert submitted(TypeText(text="rm x"), key("Escape"), key("b"), key("Return")) == [
        ("rm xb", ("motion",))]


def test_desktop_shortcuts_do_not_touch_the_line() -> None:
    assert submitted(TypeText(text="ls"), key("ctrl", "alt", "t"), key("super", "e"),
                     key("ctrl", "shift", "c"), key("Return")) == [("ls", ())]


def test_a_known_paste_is_inserted_like_typed_text() -> None:
    tracker = LineTracker()
    tracker.propose("xterm", TypeText(text="echo "))
    tracker.commit()
    view = tracker.propose("xterm", key("ctrl", "v"), pasted="hi; rm -r x\nls")
    assert view.submitted_line == "echo hi; rm -r x"
    assert view.pasted == "hi; rm -r x\nls"
    tracker.commit()
    assert tracker.line("xterm").text == "ls"


def test_each_window_has_its_own_line_and_an_uncommitted_action_changes_nothing() -> None:
    tracker = LineTracker()
    tracker.propose("xterm", TypeText(text="rm -"))
    tracker.commit()
    tracker.propose("editor", TypeText(text="notes"))
    tracker.commit()
    tracker.propose("xterm", TypeText(text="rf x"))  # refused: never committed
    assert tracker.propose("xterm", key("Return")).submitted_line == "rm -"
    assert tracker.line("editor").text == "notes"


def test_paste_keys_and_their_selections() -> None:
    assert [is_paste(a) for a in (key("ctrl", "v"), key("ctrl", "shift", "v"),
                                  key("shift", "Insert"), Click(button="middle"),
                                  key("ctrl", "c"), Click())] == [True] * 4 + [False] * 2
    assert [paste_selection(a) for a in (key("ctrl", "v"), key("shift", "Insert"),
                                         Click(button="middle"))] == [
        "clipboard", "primary", "primary"]


@given(st.lists(st.text(alphabet=st.characters(whitelist_categories=("L", "N", "P", "Zs")),
                        min_size=1, max_size=12), min_size=1, max_size=6))
def test_typed_pieces_then_return_submit_exactly_their_concatenation(pieces: list[str]) -> None:
    actions: list[Action] = [TypeText(text=p) for p in pieces]
    line = "".join(pieces)
    result = submitted(*actions, key("Return"))
    if line.endswith("\\"):
        return  # a continuation waits for more
    assert result == [(line, ())]
