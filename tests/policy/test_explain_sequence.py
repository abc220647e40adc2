"""``deskhand policy explain`` with a sequence of actions: the rebuilt line, the parsed
commands and the decision of each step (through the real deskhand app)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from agent.cli import app

SPLIT = [{"type": "type", "text": "rm -"}, {"type": "type", "text": "rf ~/keep"},
         {"type": "key", "keys": ["Return"]}]


def explain(*args: str) -> Result:
    return CliRunner().invoke(app, ["policy", "explain", "default", *args,
                                    "--window-title", "xterm"])


def test_a_json_list_shows_the_line_rebuilt_and_what_the_shell_would_run() -> None:
    result = explain(json.dumps(SPLIT))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "step 2: type 'rf ~/keep' -> ALLOW (ui.allow)\nediting:  'rm -rf ~/keep'" in out
    assert ("step 3: key enter -> ASK (shell.command.destructive, shell.destructive)\n"
            "line:     'rm -rf ~/keep'\nruns:     rm -rf ~/keep") in out
    assert "why step 3 was decided so:\ndecision: ASK" in out
    assert "+ the shell would run 'rm -rf ~/keep' (rm with -r or -R" in out


def test_a_yaml_file_of_actions_shows_hidden_commands(tmp_path: Path) -> None:
    path = tmp_path / "actions.yaml"
    path.write_text("actions:\n  - {type: type, text: \"sh -c 'x=rm; $x -r ~/keep'\\n\"}\n")
    result = explain(str(path))

    assert result.exit_code == 0, result.output
    assert "runs:     rm -r ~/keep   (via sh -c)" not in result.stdout  # the name is hidden
    assert "hides:    the command name '$x' comes from a variable" in result.stdout
    assert "ASK (shell.obfuscation)" in result.stdout


def test_a_deskhand_script_is_explained_step_by_step() -> None:
    script = Path(__file__).parents[2] / "examples" / "terminal-note.yaml"
    result = explain(str(script))

    assert result.exit_code == 0, result.output
    assert "step 5: type 'rm -rf ~/keep\\n' -> ASK" in result.stdout
    assert "runs:     cat ~/deskhand-note.txt" in result.stdout


def test_an_unparsable_line_says_why() -> None:
    result = explain(json.dumps([{"type": "type", "text": "echo 'unclosed\n"}]))

    assert result.exit_code == 0, result.output
    assert "unparsed: unexpected EOF while looking for matching" in result.stdout
    assert "ASK (shell.unparsed)" in result.stdout


def test_a_bad_action_in_a_list_names_its_position_and_exits_2() -> None:
    result = explain(json.dumps([SPLIT[0], {"type": "type"}]))

    assert result.exit_code == 2
    assert result.stderr.startswith("action 2: invalid action: type.text: Field required")


def test_a_file_without_actions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    result = explain(str(path))

    assert result.exit_code == 2
    assert "should hold a non-empty list of actions" in result.stderr
