"""Text matches as a person reads it: OCR confusions, case, spacing, dropped hyphens."""

from __future__ import annotations

import pytest

from agent.perception.screen import TextElement
from agent.perception.textmatch import closest, explain_miss, find, fold


def line(*words: str, y: int = 10) -> list[TextElement]:
    out, x = [], 10
    for word in words:
        width = 9 * len(word)
        out.append(TextElement(word, x, y, x + width, y + 16, 0.9))
        x += width + 9
    return out


@pytest.mark.parametrize(("shown", "query"), [
    (["KEEP-0K-42"], "KEEP-OK-42"),      # O read as zero
    (["KEEPOK42"], "KEEP-OK-42"),        # hyphens dropped
    (["Iist", "files"], "list files"),   # l read as I
    (["fi1e.txt"], "file.txt"),          # l read as 1
    (["modem"], "modern"),               # rn read as m
    (["Save", "As"], "save as"),         # case
    (["SaveAs"], "Save As"),             # spacing
    (["~/work$", "echo", "done"], "done"),
])
def test_ocr_confusions_still_match(shown: list[str], query: str) -> None:
    assert find(line(*shown), query) is not None


@pytest.mark.parametrize(("shown", "query"), [
    (["KEEP-OK-43"], "KEEP-OK-42"),
    (["Saved"], "Unsaved"),
    (["alpha"], "beta"),
])
def test_different_text_does_not_match(shown: list[str], query: str) -> None:
    assert find(line(*shown), query) is None


def test_exact_turns_the_tolerance_off() -> None:
    assert find(line("KEEP-0K-42"), "KEEP-OK-42", exact=True) is None
    assert find(line("KEEP-OK-42"), "KEEP-OK-42", exact=True) is not None


def test_the_box_covers_the_matched_characters_only() -> None:
    [word] = line("prefixKEEP")
    found = find([word], "KEEP")
    assert found is not None
    assert found.x0 > word.x0
    assert found.x1 == word.x1


def test_words_on_different_lines_are_not_joined() -> None:
    assert find(line("save", y=10) + line("as", y=200), "save as") is None


def test_a_miss_names_the_closest_candidates_and_the_screen() -> None:
    elements = line("echo", "KEEP-OK-43") + line("total", "3", y=40)
    message = explain_miss(elements, "KEEP-OK-42")
    assert closest(elements, "KEEP-OK-42")[0] == "KEEP-OK-43"
    assert "closest: 'KEEP-OK-43'" in message
    assert "screen read: echo KEEP-OK-43 | total 3" in message


def test_fold_is_one_reading() -> None:
    assert fold("KEEP-0K-42") == fold("keep ok 42") == "keepok42"
    assert fold("Iist") == fold("list")
