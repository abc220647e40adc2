"""The host half of the second gate, with the real default policy (no desktop needed)."""

from __future__ import annotations

from agent.shell_gate import ShellGate
from policies import PolicyContext, load_profile


def gate() -> ShellGate:
    return ShellGate(load_profile("default"),
                     PolicyContext(screen_width=1280, screen_height=800, now=0.0))


def test_commands_of_a_line_the_run_let_through_run_as_judged() -> None:
    shell = gate()
    shell.let_through("rm -rf ~/keep/cache && ls")  # a human approved it

    assert shell.judge("rm -rf ~/keep/cache") == (True, "part of a line the run let through")
    assert shell.judge("ls")[0] is True
    ran, reason = shell.judge("rm -rf ~/keep")  # not what was approved
    assert ran is False
    assert "none can be asked here" in reason


def test_a_command_quoted_in_an_approved_line_is_not_approved_with_it() -> None:
    shell = gate()
    shell.let_through('echo "rm -rf ~/keep"')
    assert shell.judge("rm -rf ~/keep")[0] is False


def test_other_commands_are_judged_by_the_policy_and_kept_for_the_record() -> None:
    shell = gate()
    assert shell.judge("git status") == (True, "Ordinary desktop work (looking, pointing, "
                                                "clicking, scrolling, typing, keys).")
    assert shell.judge("trap - DEBUG")[0] is False
    verdicts = [v.as_event() for v in shell.take_verdicts()]
    assert [(v["command"], v["ran"], v["effect"]) for v in verdicts] == [
        ("git status", True, "allow"), ("trap - DEBUG", False, "deny")]
    assert verdicts[1]["rule_ids"] == ["shell.gate-tamper"]
    assert shell.take_verdicts() == []


def test_a_session_grant_lets_the_gate_allow_what_it_would_ask() -> None:
    context = PolicyContext(screen_width=1280, screen_height=800, now=0.0,
                            session_grants={"shell.command.destructive", "shell.destructive"})
    shell = ShellGate(load_profile("default"), context)
    assert shell.judge("rm -rf ~/keep/cache")[0] is True
