"""Secret placeholders: where values come from, who sees names, who types values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.registry import SandboxInputs
from agent.runs import RunOptions, RunServices, open_run, plan_run
from agent.secrecy import parse_secret_specs, resolve_secrets
from agent.settings import Settings
from agent.suites.errors import SuiteError
from agent.suites.schema import load_suite
from audit.log import AuditLog
from policies.decision import PolicyContext
from policies.engine import load_profile
from sandbox.actions import TypeText
from sandbox.fake import FakeSandbox
from sandbox.secrets import SecretValues

VALUE = "plum-harbor-7731-quartz"


def _owner_only(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_values_come_from_the_environment_or_an_owner_only_file(tmp_path: Path) -> None:
    path = _owner_only(tmp_path / "token", VALUE)
    sources = parse_secret_specs(["A=MY_VAR", f"B=file:{path}"])

    values = resolve_secrets(sources, environ={"MY_VAR": "from-env"})

    assert dict(values) == {"A": "from-env", "B": VALUE}
    assert VALUE not in repr(values)


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_group_or_world_readable_file_is_refused_in_one_line(tmp_path: Path,
                                                               mode: int) -> None:
    path = tmp_path / "token"
    path.write_text(VALUE)
    path.chmod(mode)

    with pytest.raises(ConfigError) as caught:
        resolve_secrets({"TOKEN": f"file:{path}"})

    message = str(caught.value)
    assert "\n" not in message
    assert "readable by group or others" in message
    assert f"chmod 600 {path}" in message
    assert VALUE not in message


@pytest.mark.parametrize(("spec", "expected"), [
    ("TOKEN", "NAME=ENV_VAR"), ("9X=VAR", "letters, digits"), ("T=", "NAME=ENV_VAR")])
def test_a_malformed_secret_flag_says_what_to_write(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_secret_specs([spec])


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
        resolve_secrets({"TOKEN": "NOT_SET_ANYWHERE"}, environ={})


def test_the_cli_refuses_a_readable_secret_file_before_anything_starts(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(VALUE)
    secret.chmod(0o644)
    script = tmp_path / "s.yaml"
    script.write_text("task: type it\nsteps:\n  - type: '{{secret:TOKEN}}'\n")

    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--script", str(script), "--sandbox", "fake",
         "--no-perception", "--db", str(tmp_path / "a.db"), "--secret",
         f"TOKEN=file:{secret}"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path)})

    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "readable by group or others" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "a.db").exists()


def test_the_policy_knows_a_placeholder_is_a_secret_without_asking_about_it() -> None:
    policy = load_profile("default")
    context = PolicyContext(screen_width=1280, screen_height=800)

    decision = policy.decide(TypeText(text="export TOKEN={{secret:TOKEN}}\n"), context)

    assert decision.secret
    assert decision.effect == "allow"


def test_the_sandbox_types_the_value_and_the_log_keeps_only_the_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUM_TOKEN", VALUE)
    script = tmp_path / "s.yaml"
    script.write_text("task: configure it\nsteps:\n"
                      "  - type: 'login {{secret:TOKEN}}'\n"
                      "  - type: 'again {{secret:NOPE}}'\n")
    boxes: list[FakeSandbox] = []

    def fake(kind: str, inputs: SandboxInputs) -> FakeSandbox:
        boxes.append(FakeSandbox())
        return boxes[-1]

    settings = Settings(home=tmp_path).with_overrides(
        sandbox="fake", perception=False, db=tmp_path / "a.db", secret=("TOKEN=PLUM_TOKEN",))
    plan = plan_run(settings, script=script)
    with open_run(plan, RunOptions(services=RunServices(make_sandbox=fake))) as run:
        summary = run.loop.run(plan.task)
    with AuditLog.open(tmp_path / "a.db") as log:
        steps = log.steps(summary.session_id)

    assert f"login {VALUE}" in boxes[0].typed_text
    assert steps[0].secret
    assert steps[1].status == "error"
    assert "unknown secret placeholder {{secret:NOPE}}" in (steps[1].error or "")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("a.db*") if p.is_file())
    assert VALUE.encode() not in stored


def test_a_suite_names_its_secrets_in_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.suite.yaml"
    path.write_text("suite: S\ndefaults:\n  secrets: {TOKEN: MY_VAR, KEY: 'file:~/k'}\n"
                    "cases:\n  - id: a\n    steps: [{type: '{{secret:TOKEN}}'}]\n")

    case = load_suite(path).cases[0]

    assert case.secrets == (("KEY", "file:~/k"), ("TOKEN", "MY_VAR"))


def test_a_suite_secret_with_a_bad_name_is_located(tmp_path: Path) -> None:
    path = tmp_path / "s.suite.yaml"
    path.write_text("suite: S\ndefaults:\n  secrets: {9bad: MY_VAR}\n"
                    "cases:\n  - id: a\n    steps: [screenshot]\n")

    with pytest.raises(SuiteError) as caught:
        load_suite(path)

    assert "secrets" in str(caught.value)


def test_an_unknown_placeholder_names_the_known_secrets_never_their_values() -> None:
    values = SecretValues({"TOKEN": VALUE})

    with pytest.raises(ValueError, match=r"knows: TOKEN\)") as caught:
        values.substitute("{{secret:OTHER}}")

    assert VALUE not in str(caught.value)


def test_a_value_too_short_to_scrub_safely_is_refused() -> None:
    with pytest.raises(ConfigError, match="shorter than 4 characters"):
        resolve_secrets({"PIN": "MY_PIN"}, environ={"MY_PIN": "12"})
