"""Evasions of the shell rules, decided as the loop decides them (line rebuilt across
actions): every one ends in ask or deny.  Everyday commands are rarely asked."""

from __future__ import annotations

import pytest

from policies import PolicyContext, load_profile
from policies.sequence import decide_sequence
from tests.policy.corpus import Attempt, evasions, everyday

EVASIONS = evasions()
EVERYDAY = everyday()
MAX_ASKED_FRACTION = 0.03


def _context(attempt: Attempt) -> PolicyContext:
    return PolicyContext(screen_width=1280, screen_height=800, window_title=attempt.window,
                         now=1000.0)


def _stopped_at(profile: str, attempt: Attempt) -> list[str]:
    """The effect and rules of the step that stopped the attempt ([] if everything ran)."""
    steps = decide_sequence(load_profile(profile), attempt.actions, _context(attempt),
                            stop_at_first_not_allowed=True)
    last = steps[-1].decision
    return [] if last.allowed else [last.effect, *last.rule_ids]


def test_the_corpus_has_at_least_sixty_evasions_with_unique_ids() -> None:
    ids = [attempt.id for attempt in EVASIONS]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("attempt", EVASIONS, ids=[a.id for a in EVASIONS])
@pytest.mark.parametrize("profile", ["default", "strict"])
def test_every_evasion_ends_in_ask_or_deny(profile: str, attempt: Attempt) -> None:
    stopped = _stopped_at(profile, attempt)
    assert stopped, f"{attempt.what}: every action was allowed"
    assert stopped[0] in {"ask", "deny"}


def test_the_rebuilt_line_not_a_fragment_stops_a_split_command() -> None:
    attempt = next(a for a in EVASIONS if a.id == "split-over-two-types")
    steps = decide_sequence(load_profile("default"), attempt.actions, _context(attempt))
    first, second = steps
    assert first.decision.allowed  # "rm -" alone is harmless
    assert second.context.submitted_line == "rm -rf ~/keep"
    assert "shell.command.destructive" in second.decision.rule_ids


def test_everyday_commands_are_asked_at_most_three_percent_of_the_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    asked = [a.id for a in EVERYDAY if _stopped_at("default", a)]
    fraction = len(asked) / len(EVERYDAY)
    with capsys.disabled():
        print(f"\neveryday commands asked under default: {len(asked)}/{len(EVERYDAY)} "
              f"= {fraction:.1%} {asked}")
    assert len(EVERYDAY) >= 100
    assert fraction <= MAX_ASKED_FRACTION, asked
