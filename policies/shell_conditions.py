"""Conditions on what the shell will run: commands, obfuscation, unparsable and unknown lines.

They read :meth:`policies.conditions.Probe.shell` — the action's own text and
the whole line it submits, parsed by :mod:`policies.shell` — so a command split
over several actions is judged as the shell receives it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass

from policies.conditions import Probe
from policies.shell import ShellAnalysis, SimpleCommand, short_bundle


def _analyses(probe: Probe) -> Iterator[ShellAnalysis]:
    for analysis in probe.shell():
        if analysis is not None:
            yield analysis


def _line(probe: Probe) -> ShellAnalysis | None:
    return probe.shell()[1]


def has_option(args: tuple[str, ...], option: str) -> bool:
    """Whether ``option`` is among ``args``, wherever it sits, before a ``--``.

    ``-r`` matches any bundle of short options containing ``r`` (``-fr``,
    ``-Rf``); ``--recursive`` matches itself, ``--recursive=...`` and every
    abbreviation getopt accepts (``--rec``); a single-dash word option such as
    find's ``-delete`` matches exactly.
    """
    long_option = option.startswith("--")
    short_letter = option[1] if len(option) == 2 and option[0] == "-" else None
    for arg in args:
        if arg == "--":
            return False
        if long_option and arg.startswith("--") and len(arg) > 2:
            name = arg.split("=", 1)[0]
            if option.startswith(name) and len(name) >= 3:
                return True
        elif arg == option or (short_letter is not None and short_bundle(arg)
                               and short_letter in arg[1:]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class CommandPattern:
    """One ``command:`` item: a name (shell-style pattern) and what else it must have."""

    names: tuple[str, ...]
    options_any: tuple[str, ...] = ()
    args_any: tuple[re.Pattern[str], ...] = ()
    subcommand: frozenset[str] = frozenset()
    redirect_any: frozenset[str] = frozenset()
    via_any: tuple[str, ...] = ()

    def matches(self, command: SimpleCommand) -> bool:
        if not any(fnmatch.fnmatchcase(command.name, name) for name in self.names):
            return False
        if self.subcommand and not self.subcommand & set(_operands(command.args)[:2]):
            return False
        if self.options_any and not any(has_option(command.args, o) for o in self.options_any):
            return False
        if self.args_any and not any(p.search(a) for a in command.args for p in self.args_any):
            return False
        if self.redirect_any and not any(op in self.redirect_any
                                         for op, _target in command.redirects):
            return False
        return not self.via_any or any(command.via.startswith(v) for v in self.via_any)

    def describe(self) -> str:
        parts = ["/".join(self.names)]
        if self.subcommand:
            parts.append("/".join(sorted(self.subcommand)))
        if self.options_any:
            parts.append("with " + " or ".join(self.options_any))
        if self.args_any:
            parts.append("with an argument matching " + " or ".join(
                f"/{p.pattern}/" for p in self.args_any))
        if self.redirect_any:
            parts.append("redirected with " + " or ".join(sorted(self.redirect_any)))
        if self.via_any:
            parts.append("run by " + " or ".join(self.via_any))
        return " ".join(parts)


def _operands(args: tuple[str, ...]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


@dataclass(frozen=True, slots=True)
class CommandRuns:
    """Holds when the action's text or submitted line runs a command matching any pattern."""

    patterns: tuple[CommandPattern, ...]

    def test(self, probe: Probe) -> bool:
        return self._first(probe) is not None

    def why(self, probe: Probe) -> str:
        found = self._first(probe)
        if found is not None:
            command, pattern = found
            return f"the shell would run {command.render()!r} ({pattern.describe()})"
        wanted = "; ".join(p.describe() for p in self.patterns)
        return f"no command the shell would run is one of: {wanted}"

    def _first(self, probe: Probe) -> tuple[SimpleCommand, CommandPattern] | None:
        for analysis in _analyses(probe):
            for command in analysis.commands:
                for pattern in self.patterns:
                    if pattern.matches(command):
                        return command, pattern
        return None


@dataclass(frozen=True, slots=True)
class ShellObfuscated:
    """Holds when the submitted line hides what it runs (see :mod:`policies.shell`)."""

    def test(self, probe: Probe) -> bool:
        line = _line(probe)
        return line is not None and bool(line.obfuscations)

    def why(self, probe: Probe) -> str:
        line = _line(probe)
        if line is None:
            return "the action submits no line to a shell"
        if line.obfuscations:
            return "the submitted line hides what it runs: " + "; ".join(line.obfuscations)
        return "the submitted line hides nothing the parser can tell"


@dataclass(frozen=True, slots=True)
class ShellUnparsed:
    """Holds when the submitted line cannot be parsed as shell (fail closed)."""

    def test(self, probe: Probe) -> bool:
        line = _line(probe)
        return line is not None and not line.parsed

    def why(self, probe: Probe) -> str:
        line = _line(probe)
        if line is None:
            return "the action submits no line to a shell"
        if line.parse_error is not None:
            return f"the submitted line cannot be parsed as shell: {line.parse_error}"
        return "the submitted line parses as shell"


@dataclass(frozen=True, slots=True)
class LineUnknown:
    """Holds when the action submits a line that could not be rebuilt, for any of ``reasons``."""

    reasons: frozenset[str]

    def test(self, probe: Probe) -> bool:
        context = probe.context
        return context.submitted_line is not None and bool(
            self.reasons & set(context.line_unknown))

    def why(self, probe: Probe) -> str:
        context = probe.context
        if context.submitted_line is None:
            return "the action submits no line"
        if not context.line_unknown:
            return "the submitted line is known exactly"
        reasons = ", ".join(context.line_unknown)
        verb = "includes" if self.test(probe) else "is not"
        wanted = ", ".join(sorted(self.reasons))
        return f"the submitted line is unknown ({reasons}), which {verb} one of: {wanted}"
