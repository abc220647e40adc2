"""Errors of the policy package.

    ValueError
    └── PolicyError             a policy file or profile that cannot be used;
        │                       every problem names file, line and field
        └── UnknownProfileError a profile name that deskhand does not ship

A rule that fails while deciding is not an exception: the decision is a deny
that names the rule (see :mod:`policies.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file.

    ``line`` is 1-based, or ``None`` when the file could not be read at all;
    ``field`` is a dotted path such as ``rules[3].match.text`` (empty when the
    problem is with the file as a whole).
    """

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class PolicyError(ValueError):
    """A policy that cannot be loaded; ``str()`` lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, line: int | None, field: str, message: str) -> Self:
        """An error with exactly one problem."""
        return cls([Problem(file, line, field, message)])

    @property
    def file(self) -> str:
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def field(self) -> str:
        return self.problems[0].field


class UnknownProfileError(PolicyError):
    """``load_profile`` was given a name that is not a shipped profile."""
