"""The benchmark's results table in four forms: rich (terminal), Markdown, CSV, HTML.

Every form shows the same columns, in the same order (:data:`COLUMNS`);
the CSV keeps the raw numbers, the others format them for reading.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING

from agent.suites.results_table import Row

if TYPE_CHECKING:
    from rich.table import Table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4f}"


def _rate(row: Row) -> str:
    if row.success_rate is None:
        return "–"
    return (f"{_pct(row.success_rate)} [{_pct(row.wilson_low)}, {_pct(row.wilson_high)}] "
            f"({row.successes}/{row.trials})")


COLUMNS: tuple[tuple[str, Callable[[Row], str]], ...] = (
    ("model", lambda r: r.model),
    ("budget", lambda r: str(r.budget) if r.budget else "task's"),
    ("tasks", lambda r: str(r.tasks)),
    ("success (95% Wilson)", _rate),
    ("pass@k", lambda r: f"{_pct(r.pass_at_k)} (k={r.k})"),
    ("median steps", lambda r: _num(r.median_steps)),
    ("wall p50/p90", lambda r: f"{_num(r.wall_p50_s, ' s')} / {_num(r.wall_p90_s, ' s')}"),
    ("model p50/p90", lambda r: f"{_num(r.model_p50_s, ' s')} / {_num(r.model_p90_s, ' s')}"),
    ("tokens in/out", lambda r: f"{r.tokens_in} / {r.tokens_out}"),
    ("$/task", lambda r: _usd(r.cost_per_task_usd)),
    ("$/success", lambda r: _usd(r.cost_per_success_usd)),
    ("approvals asked/denied", lambda r: f"{r.approvals_asked} / {r.approvals_denied}"),
    ("false success", lambda r: f"{_pct(r.false_success_rate)} "
                                f"({r.false_successes}/{r.claimed_done})"),
    ("infra errors", lambda r: str(r.infra_errors)),
    ("cache hits", lambda r: str(r.cache_hits)),
)


def cells(row: Row) -> list[str]:
    return [render(row) for _, render in COLUMNS]


def rich_table(rows: Sequence[Row]) -> Table:
    """For the terminal: a column per model and budget, a line per figure (fits 80 columns)."""
    from rich.table import Table

    table = Table(title="Planner benchmark", title_justify="left")
    table.add_column("")
    for row in rows:
        table.add_column(f"{row.model} · {COLUMNS[1][1](row)}", overflow="fold")
    columns = [cells(row) for row in rows]
    for index, (name, _) in enumerate(COLUMNS[2:], start=2):
        table.add_row(name, *(column[index] for column in columns))
    return table


def markdown(rows: Sequence[Row]) -> str:
    names = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Row]) -> str:
    """Raw values, one column per :class:`Row` field (None as empty)."""
    buffer = io.StringIO()
    names = [f.name for f in fields(Row)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if getattr(row, n) is None else getattr(row, n) for n in names])
    return buffer.getvalue()


def html_table(rows: Sequence[Row]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(row))
                   + "</tr>" for row in rows)
    return (f"<h2>Planner benchmark</h2><table class='benchmark'><tr>{head}</tr>{body}"
            "</table>")


def into_html_report(page: str, table: str) -> str:
    """The suite report with the results table right under its title."""
    anchor = "<h1>deskhand test</h1>"
    if anchor in page:
        return page.replace(anchor, anchor + table, 1)
    return page.replace("<body>", "<body>" + table, 1)
