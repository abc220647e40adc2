"""Start a desktop (Xvfb + openbox) and then become COMMAND inside it.

    python3 session.py [--size 1280x800] [--timeout 15] -- COMMAND [ARG...]

Xvfb picks a free display itself (``-displayfd``) and only listens on local
sockets; openbox runs with ``openbox-rc.xml`` from this folder and signals
readiness through its ``--startup`` hook.  Then this process *becomes*
COMMAND (``exec``) with ``DISPLAY`` set, keeping its stdin and stdout: the
local sandbox runs the executor this way, so the executor's channel is this
process's stdin/stdout.  Nothing here writes to stdout.

Xvfb and openbox get SIGKILL when this process (later: COMMAND) dies.
Standard library only, Linux only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPENBOX_RC = HERE / "openbox-rc.xml"
_PR_SET_PDEATHSIG = 1


class SessionError(Exception):
    """The desktop did not come up."""


def die_with_parent() -> None:
    """In a child before exec: get SIGKILL when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a desktop service: no stdin, output to stderr, killed with its parent."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), preexec_fn=die_with_parent,
        **kwargs)
    return proc


def start_xvfb(xvfb: str, size: str, timeout_s: float) -> str:
    """Start Xvfb on a display it picks; return ``:N`` once it accepts connections."""
    read_end, write_end = os.pipe()
    proc = spawn([xvfb, "-displayfd", str(write_end), "-screen", "0", f"{size}x24",
                  "-nolisten", "tcp", "-noreset", "-dpi", "96"], pass_fds=(write_end,))
    os.close(write_end)
    try:
        number = read_line(read_end, proc, timeout_s)
    finally:
        os.close(read_end)
    if not number.isdigit():
        raise SessionError(f"Xvfb reported display {number!r}")
    return f":{number}"


def read_line(fd: int, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    data = b""
    give_up = time.monotonic() + timeout_s
    while not data.endswith(b"\n"):
        left = give_up - time.monotonic()
        if left <= 0:
            raise SessionError(f"Xvfb did not start within {timeout_s:g}s")
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 64)
            if not chunk:
                raise SessionError(f"Xvfb exited (status {proc.wait()}) before it was ready")
            data += chunk
    return data.decode().strip()


def start_openbox(openbox: str, timeout_s: float) -> None:
    """Start openbox and wait until its ``--startup`` hook has run."""
    with tempfile.TemporaryDirectory(prefix="deskhand-session-") as folder:
        marker = Path(folder) / "openbox-ready"
        proc = spawn([openbox, "--config-file", str(OPENBOX_RC), "--startup",
                      f"touch {marker}"])
        give_up = time.monotonic() + timeout_s
        while not marker.exists():
            if proc.poll() is not None:
                raise SessionError(f"openbox exited (status {proc.returncode}) at start")
            if time.monotonic() > give_up:
                raise SessionError(f"openbox was not ready within {timeout_s:g}s")
            time.sleep(0.005)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="session.py", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x800", help="screen size WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=15.0,
                        help="seconds each service may take to start")
    parser.add_argument("--xvfb", default="Xvfb", help="the Xvfb program")
    parser.add_argument("--openbox", default="openbox", help="the openbox program")
    parser.add_argument("command", nargs="+", help="what to run once the desktop is up")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Bring the desktop up, then exec the command; returns only on failure."""
    sys.stdout = sys.stderr  # fd 1 belongs to the command that comes next
    args = parse_args(argv)
    try:
        os.environ["DISPLAY"] = start_xvfb(args.xvfb, args.size, args.timeout)
        start_openbox(args.openbox, args.timeout)
        os.execvp(args.command[0], args.command)
    except (SessionError, OSError) as exc:
        print(f"session: {exc}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
