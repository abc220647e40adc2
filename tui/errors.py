"""The errors the terminal UI meets, and where it shows them.

The TUI raises nothing of its own; it shows what the parts it drives raise::

    request errors (REQUEST_ERRORS)      a task that cannot start: bad script,
    ├── agent.errors.DeskhandError       unknown policy, missing planner ...
    ├── ValueError                       -> one line on the task screen
    └── OSError
    audit.errors.AuditError              the database failed while polling
                                         -> said in the approval queue; polling goes on
    anything raised in the run's thread  -> the live screen's status line
"""

from __future__ import annotations

from agent.errors import DeskhandError

REQUEST_ERRORS: tuple[type[Exception], ...] = (DeskhandError, ValueError, OSError)
