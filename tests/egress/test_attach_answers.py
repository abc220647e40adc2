"""``deskhand tui --attach`` answers a network question like any other: the card shows the
destination, ``s`` allows it for the session, and the gate lets the next one through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.egress import EgressSession, NetworkApprovals, PolicyGate
from audit import synthetic
from audit.log import AuditLog
from policies.network import NetworkRules
from sandbox.egress.decisions import ConnectionRequest, Verdict
from tests.tui.conftest import make_app, make_settings, wait_until
from tui.widgets.approval_queue import ApprovalQueue

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def audit_log(db_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(db_path) as log:
        yield log


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_attached_tui_allows_a_host_for_the_session(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    session_id = audit_log.start_session(synthetic.session_info("browse the wiki"))
    session = EgressSession(audit_log)
    session.bind(session_id)
    gate = PolicyGate(NetworkRules(mode="allowlist"), NetworkApprovals(session, timeout_s=30))
    request = ConnectionRequest("wiki.example", 443, "connect")
    verdicts: list[Verdict] = []
    asking = threading.Thread(target=lambda: verdicts.append(gate.decide(request)))
    asking.start()
    app = make_app(audit_log, make_settings(tmp_path, db_path), attach=True)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = app.screen.query_one(ApprovalQueue)
        await wait_until(pilot, lambda: queue.current is not None, what="the network question")
        assert queue.current is not None
        assert queue.current.summary == "network: tunnel to wiki.example:443"
        await pilot.press("s")
        await wait_until(pilot, lambda: not asking.is_alive(), what="the gate's answer")
        await pilot.press("ctrl+q")
    assert verdicts[0].allowed
    assert verdicts[0].rule == "network.approved-session"
    assert gate.decide(request).rule == "network.approved-session"  # not asked again
    assert len(audit_log.approvals(session_id)) == 1
