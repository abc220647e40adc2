"""The desktop's connections in a recorded session, for replay and export.

Each attempt the egress proxy made is a ``network`` event (host, port, SNI,
method, bytes each way, duration, outcome, rule); the start-up self-check is a
``network_selfcheck`` event.  Here they are put in words and placed on the
step timeline: an attempt belongs to the last step recorded before it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from audit.records import EventRecord, StepRecord

NETWORK_EVENT = "network"
SELFCHECK_EVENT = "network_selfcheck"


@dataclass(frozen=True, slots=True)
class NetworkAttempt:
    at_s: float  # seconds since the session started
    position: int  # index into the session's steps; -1 before the first step
    outcome: str
    text: str


def network_attempts(events: list[EventRecord], steps: list[StepRecord],
                     started_at: float) -> list[NetworkAttempt]:
    """Every recorded connection attempt, in order, placed after its step."""
    starts = [step.created_at for step in steps]
    return [NetworkAttempt(at_s=event.at - started_at,
                           position=bisect_right(starts, event.at) - 1,
                           outcome=str(event.data.get("outcome", "")),
                           text=describe_attempt(event.data))
            for event in events if event.kind == NETWORK_EVENT]


def describe_attempt(data: dict[str, Any]) -> str:
    """E.g. ``CONNECT example.com:443 (sni example.com) allowed by network.allow:example.com
    ↑1.2 kB ↓9.0 kB 40 ms``."""
    where = f"{data.get('method') or '?'} {data.get('host')}:{data.get('port')}"
    if data.get("sni"):
        where += f" (sni {data['sni']})"
    if data.get("kind") == "selfcheck":
        where = f"self-check {where}"
    words = f"{where} {data.get('outcome')} by {data.get('rule') or 'no rule'}"
    if data.get("status"):
        words += f" [{data['status']}]"
    traffic = f"↑{_size(data.get('bytes_up', 0))} ↓{_size(data.get('bytes_down', 0))}"
    return f"{words} {traffic} {float(data.get('duration_ms') or 0):.0f} ms"


def selfcheck_line(events: list[EventRecord]) -> str | None:
    """The start-up self-check in one line, if the session ran one."""
    for event in events:
        if event.kind == SELFCHECK_EVENT:
            verdict = "passed" if event.data.get("ok") else "FAILED"
            notes = "; ".join(event.data.get("notes") or [])
            return f"egress self-check {verdict}" + (f" ({notes})" if notes else "")
    return None


def network_request(step: StepRecord) -> str | None:
    """For a network step (the anchor of a question about a host), what was asked."""
    raw = step.proposed_raw
    if step.action is not None or not isinstance(raw, dict) or "network" not in raw:
        return None
    asked = raw["network"]
    return f"connect: {asked.get('method')} {asked.get('host')}:{asked.get('port')}"


def _size(count: Any) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB"):
        if value < 1000 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
