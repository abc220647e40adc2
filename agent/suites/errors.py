"""Errors of the suite runner.

    DeskhandError
    └── SuiteError      a suite file (or a set of them) that cannot run; every
                        problem names file, line and field (exit 2)

A failing case is not an exception: it is a status in the results.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.errors import DeskhandError
from policies.errors import Problem


class SuiteError(DeskhandError):
    """Suite input that cannot be used; ``str()`` lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, line: int | None, field: str, message: str) -> SuiteError:
        return cls([Problem(file, line, field, message)])
