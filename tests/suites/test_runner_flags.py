"""Runner flags end to end through the CLI, on the fake sandbox (which runs no commands:
``assert_cmd`` with ``exit: 127`` passes there, with ``exit: 0`` fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PASS = "      - assert_cmd: {run: 'true', exit: 127, timeout: 0.2}\n"
FAIL = "      - assert_cmd: {run: 'true', exit: 0, timeout: 0.2}\n"


def suite(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flags.suite.yaml"
    path.write_text("suite: Flags\ndefaults: {sandbox: fake}\ncases:\n" + body,
                    encoding="utf-8")
    return path


def case(name: str, step: str, extra: str = "") -> str:
    return f"  - id: {name}\n    tags: [{name.split('-')[0]}]\n{extra}    steps:\n{step}"


def run(*args: str | Path) -> tuple[int, list[dict[str, object]], str]:
    done = subprocess.run([sys.executable, "-m", "agent", "test", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    output = Path(str(args[args.index("--output") + 1]))
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()] \
        if (output / "results.jsonl").exists() else []
    return done.returncode, lines, done.stdout + done.stderr


def test_last_failed_reruns_only_what_did_not_pass(tmp_path: Path) -> None:
    path = suite(tmp_path, case("good-a", PASS) + case("bad-b", FAIL) + case("good-c", PASS))
    out = tmp_path / "out"
    code, lines, text = run(path, "--output", out, "--workers", "2")
    assert code == 1, text
    assert {x["case"]: x["status"] for x in lines} == {"good-a": "passed", "bad-b": "failed",
                                                        "good-c": "passed"}
    code, lines, text = run(path, "--output", out, "--last-failed")
    assert code == 1, text
    assert [x["case"] for x in lines] == ["bad-b"]


def test_max_failures_skips_the_rest(tmp_path: Path) -> None:
    path = suite(tmp_path, case("bad-a", FAIL) + case("good-b", PASS) + case("good-c", PASS))
    code, lines, _ = run(path, "--output", tmp_path / "out", "--max-failures", "1")
    assert code == 1
    assert [(x["case"], x["status"]) for x in lines] == [
        ("bad-a", "failed"), ("good-b", "skipped"), ("good-c", "skipped")]
    assert "--max-failures 1 reached" in str(lines[1]["message"])


def test_repeat_each_retries_grep_and_tag(tmp_path: Path) -> None:
    path = suite(tmp_path, case("good-a", PASS) + case("bad-b", FAIL) + case("good-c", PASS))
    code, lines, _ = run(path, "--output", tmp_path / "o1", "--repeat-each", "2",
                         "--grep", "good-a")
    assert code == 0
    assert [(x["case"], x["repeat"]) for x in lines] == [("good-a", 1), ("good-a", 2)]
    code, lines, _ = run(path, "--output", tmp_path / "o2", "--tag", "bad", "--retries", "2")
    assert code == 1
    assert [(x["case"], x["attempt"]) for x in lines] == [("bad-b", 1), ("bad-b", 2),
                                                           ("bad-b", 3)]


def test_step_and_time_budgets_end_as_budget_exceeded(tmp_path: Path) -> None:
    waits = "      - wait: 0\n" * 4
    path = suite(tmp_path, case("steps-a", waits, "    max_steps: 2\n")
                 + case("time-b", "      - assert_cmd: {run: 'true', timeout: 30}\n",
                        "    timeout: 1\n"))
    code, lines, text = run(path, "--output", tmp_path / "out")
    assert code == 1, text
    statuses = {x["case"]: (x["status"], x["message"]) for x in lines}
    assert statuses["steps-a"][0] == "budget_exceeded"
    assert "stopped after 2 turns" in str(statuses["steps-a"][1])
    assert statuses["time-b"][0] == "budget_exceeded"
    assert "timeout (1 s) ran out" in str(statuses["time-b"][1])


def test_help_names_every_flag() -> None:
    done = subprocess.run([sys.executable, "-m", "agent", "test", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0
    for flag in ("--workers", "--shard", "--retries", "--repeat-each", "--grep", "--tag",
                 "--last-failed", "--max-failures", "--fail-on-flaky", "--reporter",
                 "--output", "--keep-sandbox-on-failure", "--planner", "--model", "--base-url",
                 "--approver", "--engine", "--oracle", "merge"):
        assert flag in done.stdout, flag


def test_an_ask_is_a_deny_without_an_approver_and_answered_with_approver_tui(
        tmp_path: Path) -> None:
    import time

    from audit.log import AuditLog

    path = suite(tmp_path, case("asks-a", "      - type: \"rm -rf ~/work\\n\"\n"))
    code, lines, _ = run(path, "--output", tmp_path / "none")
    assert code == 1
    assert lines[0]["status"] == "blocked_by_policy"

    output = tmp_path / "tui"
    runner = subprocess.Popen([sys.executable, "-m", "agent", "test", str(path), "--output",
                               str(output), "--approver", "tui", "--approval-timeout", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    answered = False
    while not answered and time.monotonic() < deadline and runner.poll() is None:
        if (output / "audit.db").exists():
            with AuditLog.open(output / "audit.db") as log:
                for request in log.pending_approvals():
                    log.answer_approval(request.id, approved=True, scope="once",
                                        approver="test", channel="tui")
                    answered = True
        time.sleep(0.1)
    out, _ = runner.communicate(timeout=120)
    assert answered
    assert runner.returncode == 0, out
    assert "deskhand tui --attach --db" in out
