"""A tiny agent run for the crash test: writes steps as fast as it can until killed.

Like the real loop, it records each step's intent (committed) *before* the
action "reaches the sandbox" — here, before it writes a marker file named
after the step id — and records the result afterwards.

    python crash_runner.py DB MARKER_DIR SEED
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from audit.log import AuditLog
from audit.synthetic import action_for, frame, session_info
from policies.decision import Decision

ALLOW = Decision(effect="allow", rule_ids=("gui.allow",), reason="ok", policy_sha256="ab" * 32)
ASK = Decision(effect="ask", rule_ids=("typing.ask",), reason="typing", policy_sha256="ab" * 32)


def run_step(log: AuditLog, session_id: str, index: int, markers: Path,
             rng: random.Random) -> None:
    before = log.put_frame(frame(index % 12, 320, 200))
    ask = rng.random() < 0.2
    step_id = log.record_intent(session_id, index=index, action=action_for(index),
                                proposed_raw={"i": index}, validation_error=None,
                                decision=ASK if ask else ALLOW, frame_before_sha256=before,
                                secret=False)
    if ask:
        approval = log.request_approval(step_id, frame_sha256=before, summary="type",
                                        rule_ids=["typing.ask"], reason="typing", timeout_s=30)
        log.answer_approval(approval, approved=True, scope="once", approver="bot",
                            channel="test")
    (markers / str(step_id)).write_text("executed")  # the action reached the sandbox
    after = log.put_frame(frame((index + 1) % 12, 320, 200))
    log.record_result(step_id, status="done", output={}, error=None, frame_after_sha256=after,
                      timings_ms={"execute_ms": 1.0})
    if rng.random() < 0.1:
        log.record_event(session_id, "planner_turn", {"message": "next"})


def main(db: str, marker_dir: str, seed: str) -> None:
    rng = random.Random(int(seed))
    markers = Path(marker_dir)
    log = AuditLog.open(Path(db))
    print("ready", flush=True)
    while True:
        session_id = log.start_session(session_info("crash test run"))
        for index in range(rng.randrange(5, 40)):
            run_step(log, session_id, index, markers, rng)
        log.end_session(session_id, outcome="done", reason="ok")


if __name__ == "__main__":
    main(*sys.argv[1:4])
