"""``deskhand policy check|explain|list`` through a real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from policies.cli import register
from policies.engine import load_profile


def invoke(*args: str) -> Result:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Keep `policy` a sub-command, as in the real app."""

    return CliRunner().invoke(app, ["policy", *args])


def test_check_summarises_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nbudgets: {max_steps: 9}\nrules:\n"
        "  - {id: look, effect: allow, reason: Looking is fine., match: {actions: screenshot}}\n"
        "  - {id: keys, effect: ask, reason: Keys need a look., match: {actions: key}}\n"
    )
    result = invoke("check", str(path))

    assert result.exit_code == 0, result.output
    assert f"{path}: ok" in result.stdout
    assert "rules:   2 (allow 1, ask 1)" in result.stdout
    assert "budgets: steps 9" in result.stdout
    assert "ask    keys  Keys need a look." in result.stdout


def test_check_reports_file_line_and_field_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("rules:\n  - id: a\n    effect: allow\n    reason: r\n    match:\n"
                    "      text: '[unclosed'\n")
    result = invoke("check", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:6: rules[0].match.text: invalid regular expression")


def test_check_accepts_a_shipped_profile_name() -> None:
    result = invoke("check", "strict")
    assert result.exit_code == 0
    assert load_profile("strict").sha256 in result.stdout


def test_explain_names_the_rule_that_fired() -> None:
    result = invoke("explain", "default", json.dumps({"type": "key", "keys": ["alt", "F4"]}))

    assert result.exit_code == 0, result.output
    assert "action:   key alt+f4" in result.stdout
    assert "decision: ASK (keys.close-window)" in result.stdout
    assert "+ keys alt+f4 include alt+f4" in result.stdout


def test_explain_uses_window_title_screen_and_grants() -> None:
    typed = json.dumps({"type": "type", "text": "alice"})
    corner = json.dumps({"type": "click", "x": 1900, "y": 5})

    login = invoke("explain", "default", typed, "--window-title", "Log in - Bank")
    granted = invoke("explain", "default", typed, "--window-title", "Log in - Bank",
                     "--grant", "window.credentials")
    wide = invoke("explain", "default", corner, "--screen", "1920x1080")

    assert "decision: ASK (window.credentials)" in login.stdout
    assert 'Typing into "Log in - Bank"' in login.stdout
    assert "decision: ALLOW (window.credentials)" in granted.stdout
    assert "granted for session" in granted.stdout
    assert "decision: ASK (region.close-corner)" in wide.stdout


def test_explain_with_triage() -> None:
    click = json.dumps({"type": "click", "x": 10, "y": 10})
    result = invoke("explain", "default", click, "--triage", "credentials_or_payments:high")
    assert "decision: ASK (triage.high-risk, triage.sensitive-task)" in result.stdout


def test_explain_shows_the_consequential_click_rule_for_a_target_element() -> None:
    click = json.dumps({"type": "click", "x": 640, "y": 400})

    delete = invoke("explain", "default", click, "--target-element", "push button:Löschen")
    cancel = invoke("explain", "default", click, "--target-element", "push button:Cancel")
    bare = invoke("explain", "default", click)

    assert "decision: ASK (ui.click.consequential)" in delete.stdout
    assert "(push button 'Löschen')" in delete.stdout
    assert "+ target push button 'Löschen' matches /(?ix)" in delete.stdout
    assert "decision: ALLOW (ui.allow)" in cancel.stdout
    assert "x target push button 'Cancel' does not match" in cancel.stdout
    assert "x the action aims at no named element" in bare.stdout


def test_explain_rejects_a_target_element_without_a_role() -> None:
    result = invoke("explain", "default", '{"type": "screenshot"}', "--target-element", "Delete")
    assert result.exit_code == 2
    assert "ROLE:NAME" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (['{"type": "teleport"}'], "invalid action"),
    (["not json"], "invalid action"),
    (['{"type": "click", "x": 5000, "y": 10}'], "outside the 1280x800 screen"),
])
def test_explain_rejects_bad_actions_with_exit_2(args: list[str], message: str) -> None:
    result = invoke("explain", "default", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_explain_rejects_a_bad_screen_size() -> None:
    result = invoke("explain", "default", '{"type": "screenshot"}', "--screen", "big")
    assert result.exit_code == 2
    assert "1280x800" in result.stderr


def test_explain_of_an_unknown_profile_exits_1() -> None:
    result = invoke("explain", "lenient", '{"type": "screenshot"}')
    assert result.exit_code == 1
    assert "unknown policy profile" in result.stderr


def test_list_shows_every_shipped_profile() -> None:
    result = invoke("list")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["default", "observe", "strict"]
