"""The host half of the second gate: judge each command a desktop shell is about to run.

The desktop's interactive bash asks before every simple command
(``sandbox/executor/gate.py``); the sandbox calls :meth:`ShellGate.judge` on a
thread of its own.  A command that is part of a line the loop has just let
through (the first gate judged it, and a human approved it if asked) runs:
it was judged already.  Any other command reached the shell by a route the
first gate cannot see — a script typing into the terminal, a paste of a
program, a launcher — and is judged by the run's policy as a line typed into
a shell; only ``allow`` lets it run (there is no human in this path: ``ask``
refuses, and says so).  Every verdict is kept for the loop to record as a
``shell_gate`` event (the loop's thread owns the audit log).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

from policies.decision import Decision, PolicyContext
from policies.shell import SimpleCommand, analyze
from sandbox.actions import MAX_TEXT_CHARS, Action, TypeText

GATE_WINDOW = "bash (deskhand shell gate)"  # a terminal to the policy's window rules
REMEMBERED_LINES = 32


class _Policy(Protocol):
    def decide(self, action: Action, context: PolicyContext) -> Decision: ...


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One command the gate saw and what became of it."""

    command: str
    ran: bool
    reason: str
    effect: str = "allow"
    rule_ids: tuple[str, ...] = ()

    def as_event(self) -> dict[str, Any]:
        return {"command": self.command, "ran": self.ran, "effect": self.effect,
                "rule_ids": list(self.rule_ids), "reason": self.reason}


class ShellGate:
    """Judges shell commands against the lines the loop let through and the policy."""

    def __init__(self, policy: _Policy, context: PolicyContext) -> None:
        self._policy = policy
        self._context = context
        self._lock = threading.Lock()
        self._let_through: deque[frozenset[SimpleCommand]] = deque(maxlen=REMEMBERED_LINES)
        self._verdicts: list[GateVerdict] = []

    def let_through(self, line: str | None) -> None:
        """The loop is about to run an action that submits ``line``: its commands may run."""
        if line is None or not line.strip():
            return
        commands = frozenset(_bare(c) for c in analyze(line).commands)
        with self._lock:
            self._let_through.append(commands)

    def judge(self, command: str) -> tuple[bool, str]:
        """Whether ``command`` may run, and why (called on the sandbox's thread)."""
        verdict = self._verdict(command)
        with self._lock:
            self._verdicts.append(verdict)
        return verdict.ran, verdict.reason

    def take_verdicts(self) -> list[GateVerdict]:
        """The verdicts given since the last call, oldest first."""
        with self._lock:
            verdicts, self._verdicts = self._verdicts, []
        return verdicts

    def _verdict(self, command: str) -> GateVerdict:
        if self._already_judged(command):
            return GateVerdict(command, True, "part of a line the run let through")
        text = command[:MAX_TEXT_CHARS - 1] or " "
        context = replace(self._context, window_title=GATE_WINDOW, submitted_line=text,
                          line_unknown=(), pasted_text=None,
                          session_grants=set(self._context.session_grants))
        decision = self._policy.decide(TypeText(text=text + "\n"), context)
        reason = decision.reason
        if decision.effect == "ask":
            reason = f"needs a human's approval, and none can be asked here: {reason}"
        return GateVerdict(command, decision.allowed, reason, decision.effect, decision.rule_ids)

    def _already_judged(self, command: str) -> bool:
        analysis = analyze(command)
        if not analysis.parsed or not analysis.commands:
            return False
        wanted = {_bare(c) for c in analysis.commands}
        with self._lock:
            return any(wanted <= line for line in self._let_through)


def _bare(command: SimpleCommand) -> SimpleCommand:
    """A command as the shell will run it, whoever runs it (``via`` left out)."""
    return SimpleCommand(command.name, command.args, command.redirects)
