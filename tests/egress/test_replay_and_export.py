"""Connection attempts show on the replay and HTML export timelines, with the self-check."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from audit import synthetic
from audit.export import export_html
from audit.log import AuditLog
from audit.replay import TerminalReplay
from audit.verify import verify
from sandbox.egress.decisions import ConnectionRecord

ALLOWED = ConnectionRecord(host="wiki.example", port=443, kind="connect", method="CONNECT",
                           outcome="allowed", rule="network.allow:wiki.example",
                           sni="wiki.example", address="93.184.215.14", bytes_up=733,
                           bytes_down=15210, duration_ms=41.5)
DENIED = ConnectionRecord(host="ads.example", port=443, kind="connect", method="CONNECT",
                          outcome="denied", rule="network.deny:ads.example", status=403)


def recorded(path: Path) -> str:
    with AuditLog.open(path) as log:
        session_id = synthetic.record_session(log, 3)
        log.record_event(session_id, "network_selfcheck", {"ok": True, "notes": []})
        for record in (ALLOWED, DENIED):
            log.record_event(session_id, "network", record.as_dict())
        step_id = log.record_network_step(session_id, request={
            "host": "new.example", "port": 443, "method": "CONNECT"},
            rule_ids=["network.unlisted"], reason="not on the allow list")
        log.record_result(step_id, status="denied", output={}, error="no answer in time",
                          frame_after_sha256=None, timings_ms={})
    return session_id


def test_replay_shows_each_attempt_and_the_network_question(tmp_path: Path) -> None:
    session_id = recorded(tmp_path / "audit.db")
    out = io.StringIO()
    with AuditLog.open(tmp_path / "audit.db") as log:
        TerminalReplay(log, session_id, Console(file=out, width=220)).print_all()
    text = out.getvalue()
    assert "egress self-check passed" in text
    assert ("CONNECT wiki.example:443 (sni wiki.example) allowed by network.allow:wiki.example "
            "↑733 B ↓15.2 kB 42 ms") in text
    assert "CONNECT ads.example:443 denied by network.deny:ads.example [403]" in text
    assert "connect: CONNECT new.example:443" in text
    assert verify(tmp_path / "audit.db").ok


def test_the_html_export_carries_the_attempts_on_its_timeline(tmp_path: Path) -> None:
    session_id = recorded(tmp_path / "audit.db")
    with AuditLog.open(tmp_path / "audit.db") as log:
        export_html(log, session_id, tmp_path / "run.html")
    page = (tmp_path / "run.html").read_text()
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert [n["outcome"] for n in data["network"]] == ["allowed", "denied"]
    assert all(0 <= n["step"] < len(data["steps"]) for n in data["network"])
    assert data["selfcheck"] == "egress self-check passed"
    assert data["steps"][-1]["action"] == "connect: CONNECT new.example:443"
    assert '<ol id="network">' in page
