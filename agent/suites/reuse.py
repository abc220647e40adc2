"""``isolation: checkpoint``: one desktop per worker, put back to its post-setup checkpoint
between cases instead of a fresh sandbox for each.

The first case a worker runs of a suite starts a sandbox as usual; right after
the suite's ``setup`` the desktop's writable files (home and /tmp) are
checkpointed (:mod:`sandbox.snapshots`, blobs beside the run's audit log) and
the desktop user's processes are listed.  Before each later case of the same
suite (same sandbox kind and network) on that worker, the files are restored
from that checkpoint (only what changed is written back) and every process
started since is ended (TERM, then KILL): its windows close.  Each attempt's
session records what was done (``suite_checkpoint``, ``suite_reset``).

What it does not reset, and a case must not rely on:

- the memory of applications the suite's setup started: they keep running with
  whatever a case left in them (an open document, a dialog, a scroll position),
  their files reset under them.  Launch apps in the case's own ``setup`` to get
  them fresh; processes started there are ended before the next case;
- the X server's state: the pointer, keyboard modifiers, the clipboard and
  selections, window stacking and focus of the setup's apps;
- anything outside home and /tmp (read-only in the container) or sent over a
  network.

A checkpoint that passes its bounds, a reset that fails, or a desktop an
attempt left in doubt (an ``error`` result) means a fresh sandbox for the next
case, recorded in its session.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit.checkpoints import CheckpointStore
from audit.log import AuditLog
from sandbox.base import Sandbox
from sandbox.errors import SandboxError
from sandbox.snapshots import SnapshotSkipped, Tree, restore_tree, take_tree

ReuseKey = tuple[str, str, bool]  # suite file, sandbox kind, network

# argv = list | end BASELINE_JSON.  The desktop user's processes (those whose HOME is
# this sandbox's: without bubblewrap the local sandbox shares the host's process list),
# as [pid, start time, name]; `end` ends those not in the baseline and prints them.
_PROCESSES = r"""
import json, os, signal, sys, time
home = os.path.expanduser("~")
def parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
mine, pid = {os.getpid()}, os.getpid()
while pid > 1:
    pid = parent(pid)
    mine.add(pid)
def listed():
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            environ = open(f"/proc/{name}/environ", "rb").read().split(b"\0")
            stat = open(f"/proc/{name}/stat").read()
        except OSError:
            continue
        if f"HOME={home}".encode() in environ:
            start = stat.rsplit(")", 1)[1].split()[19]
            yield [int(name), start, stat[stat.index("(") + 1:stat.rindex(")")]]
if sys.argv[1] == "list":
    print(json.dumps(list(listed())))
    sys.exit(0)
keep = {(pid, start) for pid, start, _ in json.loads(sys.argv[2])}
extra = [p for p in listed() if (p[0], p[1]) not in keep]
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pid, _, _ in extra:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p[0]}") for p in extra):
        time.sleep(0.02)
print(json.dumps([name for _, _, name in extra]))
"""


def _processes(box: Sandbox, *args: str) -> list[Any]:
    result = box.check(["python3", "-c", _PROCESSES, *args], timeout_s=10)
    if result.exit_code != 0:
        raise SandboxError(f"cannot list the desktop's processes: {result.stderr.strip()[-200:]}")
    listed: list[Any] = json.loads(result.stdout)
    return listed


@dataclass(slots=True)
class WarmDesktop:
    """A worker's sandbox with its post-setup checkpoint (``tree``) once taken."""

    key: ReuseKey
    box: Sandbox
    store: CheckpointStore
    tree: Tree | None = None
    baseline: list[Any] = field(default_factory=list)

    def checkpoint_after_setup(self) -> dict[str, Any]:
        """Checkpoint the files and list the processes; the ``suite_checkpoint`` event."""
        roots = tuple(getattr(self.box, "writable_roots", ("~", "/tmp")))
        taken = take_tree(self.box, roots, self.store)
        if isinstance(taken, SnapshotSkipped):
            return {"skipped": taken.why, "next_case": "a fresh sandbox"}
        self.baseline = _processes(self.box, "list")
        self.tree = taken
        return {"files": len(taken.entries), "new_bytes": taken.new_bytes,
                "ms": round(taken.seconds * 1000, 1), "roots": list(roots),
                "processes": sorted({name for _, _, name in self.baseline})}

    def reset(self) -> dict[str, Any]:
        """Put the files back and end the processes started since; the ``suite_reset``
        event.  Raises :class:`SandboxError` when that fails."""
        assert self.tree is not None
        started = time.monotonic()
        roots = tuple(getattr(self.box, "writable_roots", ("~", "/tmp")))
        killed = _processes(self.box, "end", json.dumps(self.baseline))
        restored = restore_tree(self.box, roots, self.tree.entries, self.store)
        return {"written": restored.written, "removed": restored.removed, "ended": killed,
                "ms": round((time.monotonic() - started) * 1000, 1)}


@dataclass(slots=True)
class Lease:
    """The desktop one attempt runs on, and what to tell its session at the start."""

    box: Sandbox
    warm: WarmDesktop | None
    running: bool = False
    reset: dict[str, Any] | None = None
    """The ``suite_reset`` event: the desktop was put back (suite setup already done)."""
    fallback: str = ""
    """Why a reset was not possible and a fresh sandbox came instead."""

    @property
    def was_reset(self) -> bool:
        return self.reset is not None

    def checkpoint_after_setup(self) -> dict[str, Any]:
        if self.warm is None:
            return {}
        return self.warm.checkpoint_after_setup()


class WarmDesktops:
    """One worker's kept desktop (at most one at a time)."""

    def __init__(self) -> None:
        self.current: WarmDesktop | None = None

    def lease(self, key: ReuseKey, log: AuditLog, make: Callable[[], Sandbox]) -> Lease:
        """The warm desktop reset for another case, or a new sandbox to make warm."""
        warm, fallback = self.current, ""
        if warm is not None and warm.key == key and warm.tree is not None:
            try:
                return Lease(warm.box, warm, running=True, reset=warm.reset())
            except (SandboxError, ValueError) as exc:  # ValueError: a blob that lost its bytes
                fallback = f"the reset failed ({exc}): a fresh sandbox instead"
        self.discard()
        box = make()
        self.current = WarmDesktop(key, box, CheckpointStore.beside(log))
        return Lease(box, self.current, fallback=fallback)

    def give_back(self, lease: Lease, *, reusable: bool) -> bool:
        """Keep the lease's desktop for the next case when ``reusable`` and checkpointed;
        True when it was kept (the caller must not stop it)."""
        if reusable and lease.warm is not None and lease.warm is self.current \
                and lease.warm.tree is not None:
            return True
        if lease.warm is self.current:
            self.current = None
        return False

    def discard(self) -> None:
        """Stop the kept desktop, if any."""
        warm, self.current = self.current, None
        if warm is not None:
            with contextlib.suppress(SandboxError):
                warm.box.stop()
