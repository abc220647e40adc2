"""What the proxy asks about each connection, and what it reports afterwards.

The proxy lives on the ground floor and knows no policy file and no audit log:
it asks a :class:`Gate` (the policy, with a human behind it for unknown hosts;
see ``agent/egress.py``) and tells a :class:`Recorder` what happened, one
:class:`ConnectionRecord` per attempt, allowed or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["connect", "http", "selfcheck"]
Outcome = Literal["allowed", "denied", "refused", "failed"]
Effect = Literal["allow", "deny", "ask"]


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """A destination the desktop asked for: a CONNECT tunnel or one plain-HTTP request."""

    host: str
    port: int
    kind: Kind
    method: str = "CONNECT"

    @property
    def interactive(self) -> bool:
        """Whether a human may be asked (never for the start-up self-check)."""
        return self.kind != "selfcheck"

    def describe(self) -> str:
        what = "tunnel to" if self.method == "CONNECT" else f"{self.method}"
        return f"{what} {self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer: ``rule`` names what decided; ``addresses_allowed`` lifts the
    private-address refusal for a destination the rule names by address."""

    allowed: bool
    rule: str
    reason: str
    addresses_allowed: bool = False


class Gate(Protocol):
    def decide(self, request: ConnectionRequest) -> Verdict:
        """Allow or refuse ``request``; may wait for a human (then deny on timeout)."""
        ...


@dataclass(slots=True)
class ConnectionRecord:
    """One attempt, as the audit log keeps it."""

    host: str
    port: int
    kind: Kind
    method: str
    outcome: Outcome = "failed"
    rule: str = ""
    reason: str = ""
    sni: str | None = None
    address: str | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    duration_ms: float = 0.0
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recorder(Protocol):
    def record(self, record: ConnectionRecord) -> None: ...


class AllowAll:
    """A gate for benchmarks and tools: every destination allowed, addresses still screened."""

    def decide(self, request: ConnectionRequest) -> Verdict:
        return Verdict(True, "allow-all", "everything is allowed")


class ForgetRecords:
    """A recorder that keeps nothing."""

    def record(self, record: ConnectionRecord) -> None:
        pass


class KeepRecords:
    """A recorder that keeps every record in memory (tests, the self-check)."""

    def __init__(self) -> None:
        self.records: list[ConnectionRecord] = []

    def record(self, record: ConnectionRecord) -> None:
        self.records.append(record)
