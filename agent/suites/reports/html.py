"""One self-contained HTML report of a suite run, built from the audit log.

A summary table (counts, one row per case), then per case its attempts: a
step timeline (every action with the policy's decision and what happened,
interleaved with the suite's setup, checks and blocked steps, from the
session's events), the frame at the failing step with the action drawn
(a JPEG scaled to 800 px, inline), and a link to the session's full export
(``sessions/<id>.html``, written beside the report by :mod:`audit.export`).
No scripts, no network, no files but the exports it links.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.suites.progress import STATUS_MARK
from agent.suites.reports.evidence import Evidence
from agent.suites.results import AttemptResult, CaseResult, counts

FRAME_WIDTH = 800
JPEG_QUALITY = 70

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}.passed{color:#1a7f37}.failed,.blocked_by_policy,
.budget_exceeded{color:#cf222e}.flaky{color:#9a6700}.error{color:#8250df}.skipped{color:#888}
.case{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}
.timeline td{font-family:ui-monospace,monospace;font-size:12px}img{max-width:100%;
border:1px solid #ccc}.msg{white-space:pre-wrap;font-family:ui-monospace,monospace}
"""


def write_html(cases: Sequence[CaseResult], path: Path, evidence: Evidence) -> None:
    exports = _export_sessions(cases, path.parent / "sessions", evidence)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>deskhand test report"
             f"</title><style>{_CSS}</style></head><body>", _summary(cases)]
    parts += [_case_section(case, evidence, exports) for case in cases]
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")


def _summary(cases: Sequence[CaseResult]) -> str:
    tally = counts(cases)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = " · ".join(f"<span class='{s}'>{n} {s}</span>" for s, n in tally.items() if n)
    rows = "".join(
        f"<tr><td class='{c.status}'>{STATUS_MARK.get(c.status, '')} {c.status}</td>"
        f"<td>{_e(c.last.suite)}</td><td><a href='#{_anchor(c)}'>{_e(c.last.case)}</a></td>"
        f"<td>{len(c.attempts)}</td><td>{sum(a.duration_s for a in c.attempts):.1f} s</td>"
        f"<td>{_e(_short(c.first_failure.message if c.first_failure else ''))}</td></tr>"
        for c in cases)
    return (f"<h1>deskhand test</h1><p>{len(cases)} cases: {head} — {when}</p>"
            "<table><tr><th>status</th><th>suite</th><th>case</th><th>attempts</th>"
            f"<th>time</th><th>failure</th></tr>{rows}</table>")


def _case_section(case: CaseResult, evidence: Evidence, exports: dict[str, str]) -> str:
    last = case.last
    body = [f"<div class='case' id='{_anchor(case)}'><h2 class='{case.status}'>"
            f"{STATUS_MARK.get(case.status, '')} {_e(last.suite)} › {_e(last.case)} "
            f"<small>({case.status})</small></h2><p>{_e(last.name)} — {_e(last.file)}:"
            f"{last.case_line}</p>"]
    body += [_attempt_section(attempt, evidence, exports) for attempt in case.attempts]
    body.append("</div>")
    return "".join(body)


def _attempt_section(attempt: AttemptResult, evidence: Evidence,
                     exports: dict[str, str]) -> str:
    link = exports.get(attempt.session_id)
    session = (f" · session <a href='{_e(link)}'>{attempt.session_id[:12]}</a>" if link
               else (f" · session {attempt.session_id[:12]}" if attempt.session_id else ""))
    parts = [f"<h3>attempt {attempt.attempt}: <span class='{attempt.status}'>"
             f"{attempt.status}</span> <small>{attempt.duration_s:.1f} s, engine "
             f"{_e(attempt.engine)}{session}</small></h3>"]
    if attempt.status != "passed" and attempt.message:
        where = f"{attempt.file}:{attempt.line}: " if attempt.line else ""
        parts.append(f"<p class='msg'>{_e(where + attempt.message)}</p>")
    parts.append(_timeline(attempt, evidence))
    if attempt.status not in {"passed", "skipped"}:
        parts.append(_failing_frame(attempt, evidence))
    return "".join(parts)


def _timeline(attempt: AttemptResult, evidence: Evidence) -> str:
    rows: list[tuple[float, str]] = []
    for step in evidence.steps(attempt):
        from audit.render import describe

        effect = step.decision_effect or "invalid"
        why = step.error or step.validation_error or ""
        rows.append((step.created_at, f"<tr><td>#{step.index}</td><td>{_e(describe(step.action))}"
                     f"</td><td>{effect}</td><td>{step.status}</td><td>{_e(_short(why))}</td>"
                     "</tr>"))
    for event in evidence.events(attempt):
        if event.kind.startswith("suite_"):
            rows.append((event.at, _event_row(event.kind, event.data)))
    if not rows:
        return ""
    rows.sort(key=lambda row: row[0])
    return ("<table class='timeline'><tr><th></th><th>step</th><th>decision</th><th>result</th>"
            f"<th>detail</th></tr>{''.join(r for _, r in rows)}</table>")


def _event_row(kind: str, data: dict[str, Any]) -> str:
    name = kind.removeprefix("suite_")
    line = f"line {data['line']}" if data.get("line") else ""
    ok = data.get("ok")
    result = "ok" if ok else ("failed" if ok is False else str(data.get("status", "")))
    what = f"{name} {data.get('kind', '')} {data.get('phase', '')}".strip()
    return (f"<tr><td>{line}</td><td>{_e(what)}</td><td>suite</td><td>{_e(result)}</td>"
            f"<td>{_e(_short(str(data.get('message', ''))))}</td></tr>")


def _failing_frame(attempt: AttemptResult, evidence: Evidence) -> str:
    picture = evidence.failing_picture(attempt)
    if picture is None:
        return ""
    if picture.width > FRAME_WIDTH:
        picture = picture.resize((FRAME_WIDTH, round(picture.height * FRAME_WIDTH
                                                     / picture.width)))
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<p>the screen at the failing step:</p>"
            f"<img alt='failing frame' src='data:image/jpeg;base64,{data}'>")


def _export_sessions(cases: Sequence[CaseResult], folder: Path,
                     evidence: Evidence) -> dict[str, str]:
    """Each attempt's full session export, by session id → link relative to the report."""
    from audit.export import export_html

    links: dict[str, str] = {}
    for case in cases:
        for attempt in case.attempts:
            log = evidence.log(attempt)
            if log is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{attempt.session_id}.html"
            export_html(log, attempt.session_id, target)
            links[attempt.session_id] = f"{folder.name}/{target.name}"
    return links


def _anchor(case: CaseResult) -> str:
    return "case-" + "".join(ch if ch.isalnum() else "-" for ch in case.key) \
        + f"-{case.last.repeat}"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
