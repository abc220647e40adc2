"""Malformed policy files: every problem names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyError, UnknownProfileError, load_policy, load_profile

VALID_RULE = """\
  - id: ui.allow
    effect: allow
    reason: Ordinary work.
    match: {actions: [click]}
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> PolicyError:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return caught.value


# (policy text, expected line, expected field, words the message must contain)
MALFORMED = {
    "invalid regular expression, written as one pattern": (
        "name: t\n"
        "rules:\n"
        "  - {id: a, effect: allow, reason: r}\n"
        "  - {id: b, effect: allow, reason: r}\n"
        "  - {id: c, effect: allow, reason: r}\n"
        "  - id: d\n"
        "    effect: ask\n"
        "    reason: r\n"
        "    match:\n"
        "      actions: type\n"
        "      text: 'rm -rf ([a-z'\n",
        11, "rules[3].match.text", "invalid regular expression",
    ),
    "invalid regular expression in a list": (
        "rules:\n"
        "  - id: a\n"
        "    effect: ask\n"
        "    reason: r\n"
        "    match:\n"
        "      text:\n"
        "        - 'fine'\n"
        "        - '(?P<x'\n",
        8, "rules[0].match.text[1]", "invalid regular expression",
    ),
    "unknown field in match": (
        "rules:\n"
        "  - id: a\n"
        "    effect: ask\n"
        "    reason: r\n"
        "    match:\n"
        "      txt: 'sudo'\n",
        6, "rules[0].match.txt", "Extra inputs are not permitted",
    ),
    "unknown effect": (
        "rules:\n" + VALID_RULE + "  - id: b\n    effect: maybe\n    reason: r\n",
        7, "rules[1].effect", "'allow', 'deny' or 'ask'",
    ),
    "missing reason": (
        "rules:\n" + VALID_RULE + "  - id: b\n    effect: deny\n",
        6, "rules[1].reason", "Field required",
    ),
    "unknown key name": (
        "rules:\n  - id: a\n    effect: deny\n    reason: r\n    match:\n"
        "      keys: [ctlr+alt+f1]\n",
        6, "rules[0].match.keys[0]", "unknown key 'ctlr'",
    ),
    "malformed key combination": (
        "rules:\n  - id: a\n    effect: deny\n    reason: r\n    match:\n      keys:\n"
        "        - alt+f4\n        - ctrl++alt\n",
        8, "rules[0].match.keys[1]", "malformed key combination",
    ),
    "unknown action type": (
        "rules:\n  - id: a\n    effect: allow\n    reason: r\n    match:\n"
        "      actions: [click, left_click]\n",
        6, "rules[0].match.actions[1]", "unknown action type 'left_click'",
    ),
    "unknown detector": (
        "rules:\n  - id: a\n    effect: ask\n    reason: r\n    match:\n"
        "      detectors: [openai_key, passwords]\n",
        6, "rules[0].match.detectors[1]", "unknown detector 'passwords'",
    ),
    "unknown region": (
        "regions:\n  corner: {pixels: [0, 0, 10, 10]}\n"
        "rules:\n  - id: a\n    effect: ask\n    reason: r\n    match:\n"
        "      regions: [corner, toolbar]\n",
        8, "rules[0].match.regions[1]", "unknown region 'toolbar'",
    ),
    "unknown region in unless": (
        "rules:\n  - id: a\n    effect: ask\n    reason: r\n    unless:\n"
        "      regions: panel\n",
        6, "rules[0].unless.regions", "unknown region 'panel'",
    ),
    "duplicate rule id": (
        "rules:\n" + VALID_RULE + VALID_RULE,
        6, "rules[1].id", "duplicate rule id 'ui.allow'",
    ),
    "reserved rule id": (
        "rules:\n  - id: budget.mine\n    effect: deny\n    reason: r\n",
        2, "rules[0].id", "reserved",
    ),
    "unknown placeholder in a reason": (
        "rules:\n  - id: a\n    effect: ask\n    reason: 'Typed {text}'\n",
        4, "rules[0].reason", "unknown placeholder {text}",
    ),
    "region with both pixels and fraction": (
        "regions:\n  corner:\n    pixels: [0, 0, 10, 10]\n    fraction: [0, 0, 1, 1]\n"
        "rules:\n" + VALID_RULE,
        2, "regions.corner", "exactly one of pixels or fraction",
    ),
    "fraction above one": (
        "regions:\n  corner:\n    fraction: [0.9, 0.0, 1.5, 0.1]\n" "rules:\n" + VALID_RULE,
        3, "regions.corner.fraction[2]", "less than or equal to 1",
    ),
    "empty region": (
        "regions:\n  corner:\n    pixels: [10, 10, 10, 20]\n" "rules:\n" + VALID_RULE,
        2, "regions.corner", "x1 > x0",
    ),
    "negative budget": (
        "budgets:\n  max_steps: 10\n  max_typed_chars: -5\n" "rules:\n" + VALID_RULE,
        3, "budgets.max_typed_chars", "greater than 0",
    ),
    "unknown budget": (
        "budgets:\n  max_clicks: 10\n" "rules:\n" + VALID_RULE,
        2, "budgets.max_clicks", "Extra inputs are not permitted",
    ),
    "triage with nothing to test": (
        "rules:\n  - id: a\n    effect: ask\n    reason: r\n    match:\n      triage:\n"
        "        confidence_at_least: 0.5\n",
        6, "rules[0].match.triage", "category, risk_at_least or both",
    ),
    "unknown triage risk": (
        "rules:\n  - id: a\n    effect: ask\n    reason: r\n    match:\n      triage:\n"
        "        risk_at_least: severe\n",
        7, "rules[0].match.triage.risk_at_least", "'low', 'medium' or 'high'",
    ),
    "unsupported version": (
        "version: 2\nrules:\n" + VALID_RULE,
        1, "version", "Input should be 1",
    ),
    "no rules": (
        "name: nothing\nrules: []\n",
        2, "rules", "at least 1 item",
    ),
    "missing rules": (
        "name: nothing\n",
        1, "rules", "Field required",
    ),
    "duplicate YAML key": (
        "rules:\n  - id: a\n    effect: allow\n    effect: deny\n    reason: r\n",
        4, "rules[0].effect", "duplicate key",
    ),
    "YAML syntax error": (
        "rules:\n  - id: a\n    effect: allow\n    reason: [unclosed\n",
        5, "", "invalid YAML",
    ),
    "top level is a list": (
        "- id: a\n  effect: allow\n",
        1, "", "must be a YAML mapping",
    ),
    "empty file": ("# nothing here\n", 1, "", "empty"),
}


@pytest.mark.parametrize(
    ("text", "line", "field", "words"), MALFORMED.values(), ids=MALFORMED.keys()
)
def test_malformed_policy_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    error = load_error(tmp_path, text)

    problem = error.problems[0]
    assert (Path(problem.file).name, problem.line, problem.field) == ("policy.yaml", line, field)
    assert words in problem.message
    prefix = f"{tmp_path / 'policy.yaml'}:{line}: " + (f"{field}: " if field else "")
    assert str(error).startswith(prefix)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        "  - id: a\n    effect: sometimes\n    reason: r\n"
        "  - id: b\n    effect: ask\n    reason: r\n    match: {text: '(', keys: [nokey]}\n"
    )
    error = load_error(tmp_path, text)

    found = {(p.line, p.field) for p in error.problems}
    assert found == {
        (3, "rules[0].effect"), (8, "rules[1].match.text"), (8, "rules[1].match.keys[0]"),
    }
    assert len(str(error).splitlines()) == 3


def test_missing_file_has_no_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "absent.yaml")
    assert caught.value.line is None
    assert "cannot read" in str(caught.value)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\nrules: []\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_a_control_character_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "control.yaml"
    path.write_text('rules:\n  - {id: a, effect: allow, reason: "r\x08"}\n')
    with pytest.raises(PolicyError, match="not valid YAML: unacceptable character") as caught:
        load_policy(path)
    assert "\n" not in str(caught.value)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(UnknownProfileError) as caught:
        load_profile("paranoid")
    assert "default, observe, strict" in str(caught.value)
    assert isinstance(caught.value, PolicyError)


@pytest.mark.parametrize("name", ["../profiles/default", "default.yaml", ""])
def test_profile_names_are_not_paths(name: str) -> None:
    with pytest.raises(UnknownProfileError):
        load_profile(name)
