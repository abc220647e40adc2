"""find_text, read_lines and changed-region arithmetic on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from agent.perception.regions import changed_regions, grow_to_cover, merge_overlapping
from agent.perception.screen import TextElement, find_text, group_lines, read_lines


def word(text: str, x0: int, y0: int, *, width: int | None = None,
         confidence: float = 0.99) -> TextElement:
    return TextElement(text, x0, y0, x0 + (width or 10 * len(text)), y0 + 16, confidence)


# "Save  As" on one line, a second "Save" further down, and a far-away "As".
SCREEN = [
    word("File", 10, 10), word("Save", 60, 10), word("As...", 110, 10),
    word("Quit", 10, 40), word("save", 60, 41),
    word("As", 900, 10),
    word("~/deskhand$", 10, 80),
]


def test_lines_are_grouped_top_to_bottom_and_left_to_right() -> None:
    lines = group_lines(list(reversed(SCREEN)))
    assert [[w.text for w in line] for line in lines] == [
        ["File", "Save", "As...", "As"], ["Quit", "save"], ["~/deskhand$"]]


def test_read_lines_keeps_far_apart_words_in_separate_phrases() -> None:
    assert read_lines(SCREEN) == ["File Save As...", "As", "Quit save", "~/deskhand$"]


def test_a_query_ignores_case_and_whitespace() -> None:
    found = find_text(SCREEN, "  SAVE   as ")
    assert found is not None
    assert found.text == "Save As"
    assert (found.x0, found.y0, found.y1) == (60, 10, 26)
    assert 125 <= found.x1 <= 135, "ends after 'As', before the dots"


def test_occurrences_count_in_reading_order() -> None:
    second = find_text(SCREEN, "save", occurrence=2)
    assert second is not None
    assert second.y0 == 41
    assert find_text(SCREEN, "save", occurrence=3) is None


def test_a_match_inside_a_word_gets_a_proportional_box() -> None:
    found = find_text(SCREEN, "deskhand")
    assert found is not None
    assert found.text == "deskhand"
    assert (found.x0, found.x1) == (30, 110)


def test_exact_matching_wants_whole_words_in_their_case() -> None:
    assert find_text(SCREEN, "Save", exact=True, occurrence=2) is None
    assert find_text(SCREEN, "desk", exact=True) is None
    found = find_text(SCREEN, "Save As...", exact=True)
    assert found is not None
    assert found.box == (60, 10, 160, 26)


def test_words_in_different_phrases_do_not_join() -> None:
    assert find_text(SCREEN, "As... As") is None


def test_bad_arguments() -> None:
    assert find_text(SCREEN, "   ") is None
    with pytest.raises(ValueError, match="occurrence"):
        find_text(SCREEN, "File", occurrence=0)


def test_changed_regions_cover_each_change_with_padding() -> None:
    before = np.zeros((200, 400, 3), np.uint8)
    after = before.copy()
    after[20:30, 50:90] = 255    # a word typed
    after[150:160, 300:320] = 255  # a clock ticking
    regions = changed_regions(before, after)
    assert sorted(regions) == [(38, 8, 102, 42), (288, 138, 332, 172)]
    assert changed_regions(before, before) == []


def test_regions_grow_to_take_in_words_they_cut() -> None:
    grown = grow_to_cover([(40, 0, 60, 20)], [(50, 5, 90, 15), (200, 5, 220, 15)])
    assert grown == [(40, 0, 90, 20)]


def test_overlapping_regions_merge() -> None:
    assert merge_overlapping([(0, 0, 10, 10), (20, 0, 30, 10), (5, 5, 25, 8)]) == [
        (0, 0, 30, 10)]


def test_frames_of_different_sizes_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        changed_regions(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8))
