"""The desktop's egress for one run: policy, human approval and the audit record.

:func:`egress_for_run` is the one place a run gets its egress: from the
policy's ``network`` section, the run's ``--allow-host`` entries
(``Settings.allow_hosts``, which a suite case may set too) and ``--network``
(full).  In ``allowlist`` mode it builds an :class:`~sandbox.egress.proxy.EgressProxy`
whose gate is :class:`PolicyGate` and whose recorder is :class:`AuditNetworkRecorder`;
the docker sandbox carries the desktop's connections to it.

A host on neither list is a question for a human, asked through the same
broker as risky steps (``deskhand tui --attach`` answers it): the question is
anchored on a *network step* of the session (no action, no frame), closed
with the answer.  Allow once, allow for the session, or deny; no answer in
time is deny.  Each attempt is a ``network`` event in the audit chain.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.errors import ConfigError
from audit.errors import AuditStateError
from audit.network import NETWORK_EVENT, SELFCHECK_EVENT
from audit.records import ApprovalAnswer, ResultStatus, Scope
from policies.network import NetworkDecision, NetworkRules
from sandbox.egress.decisions import ConnectionRecord, ConnectionRequest, Verdict
from sandbox.egress.proxy import EgressProxy
from sandbox.egress.resolver import Resolver


class NetworkLog(Protocol):
    """What egress needs of the audit log."""

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...

    def record_network_step(self, session_id: str, *, request: dict[str, Any],
                            rule_ids: Sequence[str], reason: str) -> int: ...

    def record_result(self, step_id: int, *, status: ResultStatus, output: dict[str, Any],
                      error: str | None, frame_after_sha256: str | None,
                      timings_ms: dict[str, float]) -> None: ...

    def request_approval(self, step_id: int, *, frame_sha256: str, summary: str,
                         rule_ids: tuple[str, ...] | list[str], reason: str,
                         timeout_s: float) -> int: ...

    def wait_for_answer(self, approval_id: int, *, timeout_s: float,
                        poll_s: float = 0.05) -> ApprovalAnswer | None: ...


def network_rules(policy_rules: NetworkRules, *, allow_hosts: Sequence[str] = (),
                  full: bool = False) -> NetworkRules:
    """The policy's rules with the run's overrides; ConfigError names a bad entry."""
    if full and allow_hosts:
        raise ConfigError("give --network or --allow-host, not both: --network lets the "
                          "desktop reach everything, --allow-host only the hosts named")
    try:
        rules = policy_rules.with_allowed_hosts(list(allow_hosts))
    except ValueError as exc:
        raise ConfigError(f"--allow-host: {exc}") from None
    if full:
        return NetworkRules(mode="full", allow=rules.allow, deny=rules.deny,
                            methods=rules.methods, extra_allow=rules.extra_allow)
    return rules


@dataclass
class EgressSession:
    """The session egress records into; connections before it starts are kept until then."""

    log: NetworkLog
    session_id: str | None = None
    waiting: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bind(self, session_id: str) -> None:
        with self.lock:
            self.session_id = session_id
            waiting, self.waiting = self.waiting, []
        for kind, data in waiting:
            self.log.record_event(session_id, kind, data)

    def record(self, kind: str, data: dict[str, Any]) -> None:
        with self.lock:
            if self.session_id is None:
                self.waiting.append((kind, data))
                return
            session_id = self.session_id
        self.log.record_event(session_id, kind, data)


class AuditNetworkRecorder:
    """Every connection attempt as a ``network`` event of the session."""

    def __init__(self, session: EgressSession) -> None:
        self.session = session

    def record(self, record: ConnectionRecord) -> None:
        self.session.record(NETWORK_EVENT, record.as_dict())


class NetworkApprovals:
    """Asks a human about one destination through the broker; None: no answer (deny)."""

    def __init__(self, session: EgressSession, *, timeout_s: float) -> None:
        self.session = session
        self.timeout_s = timeout_s

    def ask(self, request: ConnectionRequest, decision: NetworkDecision) -> ApprovalAnswer | None:
        session_id = self.session.session_id
        if session_id is None or self.timeout_s <= 0:
            return None
        log = self.session.log
        described = {"host": request.host, "port": request.port, "method": request.method}
        step_id = log.record_network_step(session_id, request=described,
                                          rule_ids=[decision.rule], reason=decision.reason)
        approval_id = log.request_approval(
            step_id, frame_sha256="", summary=f"network: {request.describe()}",
            rule_ids=[decision.rule], reason=decision.reason, timeout_s=self.timeout_s)
        answer = log.wait_for_answer(approval_id, timeout_s=self.timeout_s)
        approved = answer is not None and answer.approved
        # The session may have ended meanwhile, closing the step and expiring the question.
        with contextlib.suppress(AuditStateError):
            log.record_result(step_id, status="done" if approved else "denied",
                              output={"network": described, "approved": approved,
                                      "scope": answer.scope if answer else None},
                              error=None if answer else "no answer in time: denied",
                              frame_after_sha256=None, timings_ms={})
        return answer


class PolicyGate:
    """The proxy's gate: the policy's network rules, then a human for unlisted hosts."""

    def __init__(self, rules: NetworkRules, approvals: NetworkApprovals | None = None) -> None:
        self.rules = rules
        self.approvals = approvals
        self._granted: set[tuple[str, int]] = set()
        self._asking: dict[tuple[str, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def decide(self, request: ConnectionRequest) -> Verdict:
        decision = self.rules.decide(request.host, request.port, request.method)
        if decision.effect != "ask":
            return Verdict(decision.effect == "allow", decision.rule, decision.reason,
                           addresses_allowed=decision.addresses_allowed)
        if not request.interactive or self.approvals is None:
            return Verdict(False, decision.rule, decision.reason + " (nobody is asked)")
        return self._ask(request, decision)

    def _ask(self, request: ConnectionRequest, decision: NetworkDecision) -> Verdict:
        key = (request.host, request.port)
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:  # one question per destination at a time; the rest wait for it
            if key in self._granted:
                return Verdict(True, "network.approved-session",
                               f"{request.host}:{request.port} was allowed for this session")
            assert self.approvals is not None
            answer = self.approvals.ask(request, decision)
        return self._verdict_of(key, answer, decision)

    def _verdict_of(self, key: tuple[str, int], answer: ApprovalAnswer | None,
                    decision: NetworkDecision) -> Verdict:
        if answer is None:
            return Verdict(False, decision.rule, decision.reason + "; no answer in time: denied")
        if not answer.approved:
            return Verdict(False, decision.rule, decision.reason + f"; denied by {answer.approver}")
        scope: Scope = answer.scope
        if scope == "session":
            self._granted.add(key)
            return Verdict(True, "network.approved-session", f"allowed for the session by "
                           f"{answer.approver}")
        return Verdict(True, "network.approved-once", f"allowed once by {answer.approver}")


@dataclass
class RunEgress:
    """A run's egress: the rules, the proxy (allowlist mode only) and the session binding."""

    rules: NetworkRules
    session: EgressSession
    proxy: EgressProxy | None = None

    def start_session(self, session_id: str) -> None:
        """Bind the session, then run the self-check into it."""
        self.session.bind(session_id)
        if self.proxy is not None:
            self.session.record(SELFCHECK_EVENT, self_check(self.proxy, self.rules))

    def describe(self) -> dict[str, object]:
        return self.rules.describe()


def egress_for_run(rules: NetworkRules, log: NetworkLog, *, approval_timeout_s: float,
                   resolver: Resolver | None = None) -> RunEgress:
    """The run's egress from its (already overridden) rules; see the module docstring."""
    session = EgressSession(log)
    if rules.mode != "allowlist":
        return RunEgress(rules, session)
    gate = PolicyGate(rules, NetworkApprovals(session, timeout_s=approval_timeout_s))
    proxy = EgressProxy(gate, resolver=resolver, recorder=AuditNetworkRecorder(session))
    return RunEgress(rules, session, proxy)


def self_check(proxy: EgressProxy, rules: NetworkRules) -> dict[str, Any]:
    """An allowed host must answer and a denied one fail; cheap (a dial, no request)."""
    allowed, denied = rules.probe_targets()
    result: dict[str, Any] = {"ok": True, "notes": []}
    refused = proxy.probe(*denied)
    result["denied"] = refused.as_dict()
    if refused.outcome == "allowed":
        result["ok"] = False
        result["notes"].append(f"{denied[0]}:{denied[1]} should have failed but answered")
    if allowed is None:
        result["notes"].append("skipped the allowed-host check: every allow entry is a "
                               "wildcard or a network")
        return result
    answered = proxy.probe(*allowed)
    result["allowed"] = answered.as_dict()
    if answered.outcome != "allowed":
        result["notes"].append(f"skipped: the allowed host {allowed[0]}:{allowed[1]} is not "
                               f"reachable ({answered.reason})")
    return result
