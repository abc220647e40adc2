"""Reports of a suite run: JUnit XML, a JSON summary and one HTML page.

``results.jsonl`` (one attempt a line) is written by the runner as it goes;
these are made at the end, from the attempts and the audit log(s) they name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from agent.suites.reports.evidence import Evidence
from agent.suites.results import CaseResult, counts


def write_reports(cases: Sequence[CaseResult], output: Path, reporters: frozenset[str]) -> None:
    """The reports ``reporters`` ask for, into ``output``."""
    evidence = Evidence(output)
    try:
        if "junit" in reporters:
            from agent.suites.reports.junit import write_junit

            write_junit(cases, output / "junit.xml", evidence)
        if "html" in reporters:
            from agent.suites.reports.html import write_html

            write_html(cases, output / "report.html", evidence)
        if "json" in reporters:
            write_summary(cases, output / "report.json")
    finally:
        evidence.close()


def write_summary(cases: Sequence[CaseResult], path: Path) -> None:
    """``report.json``: the counts and each case's status, attempts and failure."""
    body = {"counts": counts(cases), "cases": [{
        "key": c.key, "suite": c.last.suite, "case": c.last.case, "repeat": c.last.repeat,
        "status": c.status, "attempts": len(c.attempts),
        "sessions": [a.session_id for a in c.attempts],
        "message": (c.first_failure.message if c.first_failure else ""),
    } for c in cases]}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
