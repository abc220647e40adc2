"""An approver in another process: answers the first pending approval through the audit DB.

    python -m tests.mcpserver.approver DB yes|no [RULE]

It is what ``deskhand tui --attach`` does when a human presses a key:
find the pending request in the shared database and answer it there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from audit.log import AuditLog

GIVE_UP_S = 60.0


def main(db: Path, approve: bool) -> int:
    give_up = time.monotonic() + GIVE_UP_S
    with AuditLog.open(db) as log:
        while time.monotonic() < give_up:
            for request in log.pending_approvals():
                log.answer_approval(request.id, approved=approve, scope="once",
                                    approver="tester@other-process", channel="test-approver")
                print(f"answered {request.id}: {request.summary}", flush=True)
                return 0
            time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2] == "yes"))
