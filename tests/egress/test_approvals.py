"""Unknown hosts are a question for a human through the audit database's broker; every
attempt is a record in the chain, and the chain verifies.  Real SQLite, real TLS, no docker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.egress import RunEgress, egress_for_run
from audit.log import AuditLog
from audit.records import ApprovalRequest, SessionInfo
from audit.verify import verify
from policies.network import NetworkRules, parse_host_pattern
from tests.egress.servers import (
    Certificate,
    OriginServer,
    ProxyListener,
    https_get,
    make_certificate,
)
from tests.egress.test_proxy import NAMES, TEST_RESOLVER, rule_header

UNKNOWN = "other.example"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"), NAMES)


@pytest.fixture(scope="module")
def origin(certificate: Certificate) -> Iterator[OriginServer]:
    with OriginServer(certificate) as server:
        yield server


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(tmp_path / "audit.db") as opened:
        yield opened


def start(log: AuditLog, origin: OriginServer, *, timeout_s: float) -> tuple[RunEgress, str]:
    rules = NetworkRules(mode="allowlist",
                         allow=(parse_host_pattern(f"allowed.example:{origin.port}"),),
                         deny=(parse_host_pattern("denied.example"),))
    egress = egress_for_run(rules, log, approval_timeout_s=timeout_s, resolver=TEST_RESOLVER)
    session_id = log.start_session(SessionInfo(
        task="t", planner="script", model="", policy_name="p", policy_sha256="0" * 64,
        sandbox_kind="docker", sandbox_image="", screen_width=1, screen_height=1,
        network=False))
    egress.start_session(session_id)
    return egress, session_id


def wait_for_pending(path: Path, session_id: str, timeout_s: float = 10.0) -> ApprovalRequest:
    """Poll as an attached TUI does, until the question shows up."""
    with AuditLog.open(path) as other:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pending = other.pending_approvals(session_id)
            if pending:
                return pending[0]
            time.sleep(0.02)
    raise AssertionError("no approval request appeared")


def fetch_in_background(port: int, host: str, origin: OriginServer,
                        certificate: Certificate) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(
        https_get(port, host, origin.port, "/hello", certificate)))
    thread.start()
    return thread, got


def test_an_unknown_host_waits_for_a_human_and_a_session_grant_covers_the_next_one(
        log: AuditLog, origin: OriginServer, certificate: Certificate) -> None:
    egress, session_id = start(log, origin, timeout_s=30)
    assert egress.proxy is not None
    with ProxyListener(egress.proxy) as listener:
        thread, got = fetch_in_background(listener.port, UNKNOWN, origin, certificate)
        request = wait_for_pending(log.path, session_id)
        assert request.summary == f"network: tunnel to {UNKNOWN}:{origin.port}"
        assert list(request.rule_ids) == ["network.unlisted"]
        assert thread.is_alive()  # the connection waits for the answer
        with AuditLog.open(log.path) as attached:
            assert attached.answer_approval(request.id, approved=True, scope="session",
                                            approver="tester", channel="tui")
        thread.join(20)
        again = https_get(listener.port, UNKNOWN, origin.port, "/hello", certificate)
        listener.wait_idle()
    assert got[0].startswith(b"HTTP/1.1 200")
    assert again.startswith(b"HTTP/1.1 200")
    network = [e.data for e in log.events(session_id) if e.kind == "network"]
    rules = [(d["host"], d["outcome"], d["rule"]) for d in network]
    assert (UNKNOWN, "allowed", "network.approved-session") in rules
    assert len([r for r in rules if r[0] == UNKNOWN]) == 2
    (step,) = [s for s in log.steps(session_id) if s.action is None]
    assert step.status == "done"
    assert len(log.approvals(session_id)) == 1  # the second connection was not asked again
    assert verify(log.path).ok


def test_no_answer_in_time_is_deny_with_a_403_and_the_question_expires(
        log: AuditLog, origin: OriginServer, certificate: Certificate) -> None:
    egress, session_id = start(log, origin, timeout_s=0.5)
    assert egress.proxy is not None
    with ProxyListener(egress.proxy) as listener:
        response = https_get(listener.port, UNKNOWN, origin.port, "/hello", certificate)
        listener.wait_idle()
    assert response.startswith(b"HTTP/1.1 403")
    assert rule_header(response) == "network.unlisted"
    assert b"no answer in time" in response
    (approval,) = log.approvals(session_id)
    assert approval.status == "expired"
    (step,) = [s for s in log.steps(session_id) if s.action is None]
    assert step.status == "denied"
    assert verify(log.path).ok


def test_the_self_check_records_an_allowed_host_answering_and_a_denied_one_failing(
        log: AuditLog, origin: OriginServer) -> None:
    _egress, session_id = start(log, origin, timeout_s=0)
    (check,) = [e.data for e in log.events(session_id) if e.kind == "network_selfcheck"]
    assert check["ok"] is True
    assert check["allowed"]["outcome"] == "allowed"
    assert check["denied"]["host"] == "denied.example"
    assert check["denied"]["outcome"] == "denied"
    assert check["notes"] == []
    assert verify(log.path).ok


def test_a_session_that_ends_while_a_host_waits_denies_it_and_closes_its_step(
        log: AuditLog, origin: OriginServer, certificate: Certificate) -> None:
    egress, session_id = start(log, origin, timeout_s=30)
    assert egress.proxy is not None
    with ProxyListener(egress.proxy) as listener:
        thread, got = fetch_in_background(listener.port, UNKNOWN, origin, certificate)
        request = wait_for_pending(log.path, session_id)
        log.end_session(session_id, outcome="interrupted", reason="interrupted by SIGTERM")
        thread.join(20)
        listener.wait_idle()
    assert got[0].startswith(b"HTTP/1.1 403")
    assert log.approval(request.id).status == "expired"
    (step,) = [s for s in log.steps(session_id) if s.action is None]
    assert step.status == "interrupted"
    assert "interrupted by SIGTERM" in (step.error or "")
    assert verify(log.path).ok
