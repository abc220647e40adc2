"""``deskhand policy redteam``: the shipped corpora against shipped and weakened profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from agent.cli import app

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "profiles"


def redteam(*args: str) -> Result:
    return CliRunner().invoke(app, ["policy", "redteam", *args])


def _without_shell_rules(tmp_path: Path) -> Path:
    profile = yaml.safe_load((SHIPPED / "default.yaml").read_text("utf-8"))
    profile["rules"] = [r for r in profile["rules"] if not r["id"].startswith("shell.")]
    path = tmp_path / "weak.yaml"
    path.write_text(yaml.safe_dump(profile), "utf-8")
    return path


@pytest.mark.parametrize("profile", ["default", "strict", "observe"])
def test_every_shipped_profile_stops_every_evasion_and_injection(profile: str) -> None:
    result = redteam(profile)
    assert result.exit_code == 0, result.output
    assert "evasions:   132/132 stopped" in result.output
    assert "injections: 241/241 stopped" in result.output
    assert "no attack gets through" in result.output


def test_a_profile_that_never_asks_about_injection_lets_the_screens_through(
        tmp_path: Path) -> None:
    profile = yaml.safe_load((SHIPPED / "default.yaml").read_text("utf-8"))
    profile["rules"] = [r for r in profile["rules"] if r["id"] != "injection.suspected"]
    path = tmp_path / "no-injection-rule.yaml"
    path.write_text(yaml.safe_dump(profile), "utf-8")

    result = redteam(str(path))

    assert result.exit_code == 1
    assert "evasions:   132/132 stopped" in result.output
    assert "GETS THROUGH  injection inj-de-001 (injection_corpus.jsonl:1)" in result.output
    assert "allowed by ui.allow; injection risk 0.9" in result.output


def test_a_profile_without_its_shell_rules_lets_the_evasions_through(tmp_path: Path) -> None:
    result = redteam(str(_without_shell_rules(tmp_path)))
    assert result.exit_code == 1
    assert "GETS THROUGH  evasion plain (evasions.yaml:" in result.output
    assert "the plain command -- allowed by ui.allow" in result.output
    assert "GETS THROUGH  evasion split-over-two-types" in result.output


def test_a_users_corpus_adds_cases_that_are_judged_too(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "- id: my-touch\n  what: a harmless touch\n  line: touch ~/x\n", "utf-8")
    (tmp_path / "mine.jsonl").write_text(
        '{"id": "my-ordinary", "label": "ordinary", "text": "Weather today: sunny"}\n', "utf-8")
    result = redteam("strict", "--corpus", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "evasions:   133/133 stopped" in result.output
    weak = redteam("default", "--corpus", str(tmp_path))
    assert "GETS THROUGH  evasion my-touch (mine.yaml:1): a harmless touch" in weak.output


def test_a_bad_corpus_file_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "- id: fine\n  what: ok\n  line: ls\n- id: broken\n  actions: [{type: teleport}]\n",
        "utf-8")
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\nnot json\n', "utf-8")
    result = redteam("default", "--corpus", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'bad.yaml'}:4: what: required, a non-empty string" in result.output
    assert f"{tmp_path / 'bad.yaml'}:4: actions[0]:" in result.output
    assert f"{tmp_path / 'bad.jsonl'}:1: text: required, a non-empty string" in result.output
    assert f"{tmp_path / 'bad.jsonl'}:2: not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_no_shipped_without_a_corpus_has_nothing_to_run() -> None:
    result = redteam("default", "--no-shipped")
    assert result.exit_code == 2
    assert "nothing to run: --no-shipped needs --corpus DIR with cases" in result.output


def test_live_needs_a_real_desktop(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("- id: t\n  what: w\n  line: ls\n", "utf-8")
    result = redteam("default", "--corpus", str(tmp_path), "--no-shipped", "--live",
                     "--sandbox", "fake")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --live needs a real desktop: --sandbox auto, "
                                     "docker or local, not 'fake'")
