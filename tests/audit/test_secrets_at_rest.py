"""No API key and no secret typed text ever reaches the file, its WAL or the sidecar."""

from __future__ import annotations

from pathlib import Path

from audit import synthetic
from audit.log import AuditLog
from policies.decision import Decision
from sandbox.actions import Key, TypeText

API_KEY = "sk-ant-api03-Zq8vN2xL5mK9pR4tW7yB1cD6fG3hJ0"
PASSWORD = "correct horse battery staple"
SECRET = Decision(effect="allow", rule_ids=("typing.secret",), reason="looks like a password",
                  policy_sha256="ab" * 32, secret=True)
ALLOW = Decision(effect="allow", rule_ids=("gui.allow",), reason="ok", policy_sha256="ab" * 32)


def _everything_on_disk(db_path: Path) -> bytes:
    siblings = [p for p in db_path.parent.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in siblings)


def _write_a_leaky_session(log: AuditLog) -> str:
    info = synthetic.session_info(f"log in with key {API_KEY}")
    info.extra = {"env": {"ANTHROPIC_API_KEY": API_KEY}, API_KEY: "as a key"}
    session_id = log.start_session(info)
    typed = log.record_intent(
        session_id, index=0, action=TypeText(text=PASSWORD),
        proposed_raw={"tool_use": {"input": {"action": "type", "text": PASSWORD}}},
        validation_error=None, decision=SECRET, frame_before_sha256=None, secret=False)
    approval = log.request_approval(typed, frame_sha256="f" * 64,
                                    summary=f"type {PASSWORD!r}", rule_ids=["typing.secret"],
                                    reason="secret", timeout_s=5)
    log.answer_approval(approval, approved=True, scope="once", approver="ana", channel="tui")
    log.record_result(typed, status="error", output={"echo": PASSWORD},
                      error=f"executor said: typed {PASSWORD} with {API_KEY}",
                      frame_after_sha256=None, timings_ms={})
    log.record_event(session_id, "planner_turn", {"message": f"I typed {PASSWORD}",
                                                  "headers": {"x-api-key": API_KEY}})
    later = log.record_intent(session_id, index=1, action=Key(keys=["enter"]),
                              proposed_raw=f"thinking about {PASSWORD}", validation_error=None,
                              decision=ALLOW, frame_before_sha256=None, secret=False)
    log.record_result(later, status="done", output={}, error=None, frame_after_sha256=None,
                      timings_ms={})
    log.end_session(session_id, outcome="done", reason=f"done with {API_KEY}")
    return session_id


def test_secrets_never_reach_the_database_or_its_wal(db_path: Path) -> None:
    log = AuditLog.open(db_path, redact=[API_KEY])
    session_id = _write_a_leaky_session(log)
    assert db_path.with_name(db_path.name + "-wal").exists()
    while_open = _everything_on_disk(db_path)
    [typed, _] = log.steps(session_id)
    log.close()
    after_close = _everything_on_disk(db_path)
    for secret in (API_KEY, PASSWORD):
        for encoding in ("utf-8", "utf-16-le"):
            needle = secret.encode(encoding)
            assert needle not in while_open, (secret, encoding)
            assert needle not in after_close, (secret, encoding)
    assert typed.action == TypeText(text=f"•••• ({len(PASSWORD)} chars)")
    assert typed.secret


def test_redacted_records_still_read_back(db_path: Path) -> None:
    with AuditLog.open(db_path, redact=[API_KEY]) as log:
        session = log.get_session(_write_a_leaky_session(log))
    assert session.task == "log in with key [redacted]"
    assert session.extra["env"] == {"ANTHROPIC_API_KEY": "[redacted]"}


def test_the_key_in_a_secret_line_is_scrubbed_wherever_it_shows_alone(db_path: Path) -> None:
    key = "sk-ant-api03-Hq4vT8xN2mL6pR1tW9yB3cD5"
    with AuditLog.open(db_path) as log:
        session_id = log.start_session(synthetic.session_info("set a key"))
        log.record_intent(session_id, index=0, action=TypeText(text=f"export K={key}\n"),
                          proposed_raw=None, validation_error=None, decision=SECRET,
                          frame_before_sha256=None, secret=False)
        # What the shell gate saw (no Return) and what the terminal echoed (no K=).
        log.record_event(session_id, "shell_gate", {"command": f"export K={key}"})
        log.record_event(session_id, "echo", {"line": key})
        log.record_event(session_id, "note", {"word": "export stays readable"})
        events = log.events(session_id)

    assert key.encode() not in _everything_on_disk(db_path)
    assert events[-1].data["word"] == "export stays readable"
