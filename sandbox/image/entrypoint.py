"""PID 1 of the deskhand desktop container: start the display stack and watch it.

Usage inside the container::

    entrypoint.py desktop               start the session bus, Xvfb, openbox and (when
                                        asked) x11vnc, then exit non-zero as soon as one
                                        of them dies
    entrypoint.py run-executor [ARGS]   load the executor, wait until the desktop is
                                        ready, then run it (the backend runs this with
                                        the venv python via exec)

Configuration is the environment the container was created with:

    DISPLAY                  ``:N`` (default ``:0``)
    DESKHAND_SCREEN          ``WIDTHxHEIGHT`` (default ``1280x800``)
    DESKHAND_VNC             ``off`` | ``view`` | ``write`` (default ``off``)
    DESKHAND_VNC_PASSWORD    viewer password; moved into a private file and
                             dropped from PID 1's environment before anything starts
    DESKHAND_READY_TIMEOUT_S seconds each service may take to come up (default 15)
    DBUS_SESSION_BUS_ADDRESS ``unix:path=...`` where the session bus listens (the image
                             sets it, so every process, ``docker exec`` ones too, finds
                             it); unset: no bus is started

The session bus comes up beside Xvfb (a few ms, off the critical path).  The
accessibility bus is not started here: the first app that asks the session bus
for it (``org.a11y.Bus``) has it started by D-Bus activation, and the AT-SPI
registry with it, which costs a desktop without apps nothing.

x11vnc listens on the container's loopback only; with the default ``none``
network that is the container's only interface, so a viewer reaches it only
through ``docker exec`` of ``vnc_bridge.py``.

Standard library only: this runs under the image's python3 before anything else.
"""

from __future__ import annotations

import importlib
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType

STATE_DIR = Path("/tmp/deskhand")
READY_FILE = STATE_DIR / "ready"
OPENBOX_MARKER = STATE_DIR / "openbox-started"
VNC_PASSWORD_FILE = STATE_DIR / "vnc-passwd"
DESKTOP_DIR = Path("/opt/deskhand/desktop")  # first in XDG_CONFIG_DIRS: openbox finds its menu
EXECUTOR_PACKAGE = "executor"  # /opt/deskhand/executor/, next to this file
VNC_PORT = 5900
PASSWORD_VARIABLE = "DESKHAND_VNC_PASSWORD"
_X_FAMILY_LOCAL = 256
_X_FAMILY_WILD = 0xFFFF


class StartupFailed(Exception):
    """A service did not come up; the message says which and why."""


class Terminated(Exception):
    """PID 1 was asked to stop (SIGTERM or SIGINT)."""


@dataclass(frozen=True, slots=True)
class DesktopConfig:
    """What the container was asked to run."""

    display: str
    screen: str
    vnc_mode: str
    ready_timeout_s: float
    session_bus: str = ""
    """The session bus's socket path (empty: start none)."""

    @property
    def display_number(self) -> str:
        return self.display.lstrip(":").split(".")[0]

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> DesktopConfig:
        vnc_mode = env.get("DESKHAND_VNC", "off")
        if vnc_mode not in {"off", "view", "write"}:
            raise StartupFailed(f"DESKHAND_VNC must be off, view or write, not {vnc_mode!r}")
        return cls(display=env.get("DISPLAY", ":0"),
                   screen=env.get("DESKHAND_SCREEN", "1280x800"),
                   vnc_mode=vnc_mode,
                   ready_timeout_s=float(env.get("DESKHAND_READY_TIMEOUT_S", "15")),
                   session_bus=session_bus_path(env.get("DBUS_SESSION_BUS_ADDRESS", "")))


def session_bus_path(address: str) -> str:
    """The socket path of a ``unix:path=...`` bus address; "" for no address."""
    if not address:
        return ""
    if not address.startswith("unix:path=") or "," in address:
        raise StartupFailed(f"DBUS_SESSION_BUS_ADDRESS must be unix:path=/some/socket, "
                            f"not {address!r}")
    return address.removeprefix("unix:path=")


def say(message: str) -> None:
    print(f"deskhand-entrypoint: {message}", file=sys.stderr, flush=True)


# --- preparing the private state ---------------------------------------------------------------

def stash_password_and_reexec(argv: Sequence[str]) -> None:
    """Move the VNC password out of the environment, where any process of this uid could read
    it in /proc/1/environ, into a 0600 file; then restart PID 1 without it."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        return
    make_private_dir(STATE_DIR)
    descriptor = os.open(VNC_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(password + "\n")
    clean_env = {k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}
    os.execve(sys.executable, [sys.executable, *argv], clean_env)


def make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def prepare_runtime_dirs(env: Mapping[str, str]) -> None:
    """Private state, XDG folders (apps expect them and some do not make parents), X sockets."""
    make_private_dir(STATE_DIR)
    make_private_dir(Path(env.get("XDG_RUNTIME_DIR", "/tmp/runtime-desk")))
    for folder in (".config", ".cache", ".local/share"):
        (Path.home() / folder).mkdir(parents=True, exist_ok=True)
    x11_dir = Path("/tmp/.X11-unix")
    x11_dir.mkdir(exist_ok=True)
    x11_dir.chmod(0o1777)


def write_xauthority(path: Path, display_number: str) -> None:
    """Write an Xauthority file with a fresh cookie for this display.

    Two entries with one cookie: FamilyLocal + hostname is what python-xlib
    looks up; FamilyWild serves libX11 clients whatever the hostname says.
    """

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    cookie = secrets.token_bytes(16)
    tail = field(display_number.encode()) + field(b"MIT-MAGIC-COOKIE-1") + field(cookie)
    entries = (struct.pack(">H", _X_FAMILY_LOCAL) + field(socket.gethostname().encode()) + tail
               + struct.pack(">H", _X_FAMILY_WILD) + field(b"") + tail)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(entries)


# --- starting services -------------------------------------------------------------------------

class Supervisor:
    """Owns the desktop services; PID 1 also reaps every orphan in the container."""

    def __init__(self) -> None:
        self.services: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}

    def spawn(self, name: str, argv: list[str], *,
              pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=pass_fds)
        except OSError as exc:
            raise StartupFailed(f"cannot start {name}: {exc}") from exc
        self.services[process.pid] = (name, process)
        return process

    def watch(self) -> int:
        """Reap children until a service dies; return the container's exit status."""
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                say("no services left")
                return 1
            if pid in self.services:
                name = self.services[pid][0]
                say(f"{name} exited ({describe_wait_status(status)}); stopping the desktop")
                return 1

    def stop_all(self) -> None:
        for _name, process in reversed(list(self.services.values())):
            if process.poll() is None:
                process.terminate()


def describe_wait_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


def start_xvfb(supervisor: Supervisor, config: DesktopConfig, xauthority: Path) -> None:
    """Start Xvfb and wait until it accepts connections (it writes its number to -displayfd)."""
    read_end, write_end = os.pipe()
    argv = ["Xvfb", config.display, "-screen", "0", f"{config.screen}x24",
            "-nolisten", "tcp", "-auth", str(xauthority), "-dpi", "96", "-s", "0",
            "-displayfd", str(write_end)]
    try:
        supervisor.spawn("Xvfb", argv, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        line = read_line_before(stream.fileno(), time.monotonic() + config.ready_timeout_s)
    if not line.strip():
        raise StartupFailed("Xvfb exited before it was ready")


def read_line_before(descriptor: int, deadline: float) -> bytes:
    """Read up to a newline, or to EOF, from a pipe; StartupFailed past the deadline."""
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([descriptor], [], [], max(remaining, 0))
        if not ready:
            raise StartupFailed("timed out waiting for a service to become ready")
        chunk = os.read(descriptor, 256)
        if not chunk:
            break
        data += chunk
    return data


class SessionBus:
    """The desktop's D-Bus session bus, started without waiting so it comes up beside Xvfb."""

    def __init__(self, supervisor: Supervisor, config: DesktopConfig) -> None:
        self.config = config
        self._address_pipe: int | None = None
        if config.session_bus:
            self._spawn(supervisor)

    def _spawn(self, supervisor: Supervisor) -> None:
        make_private_dir(Path(self.config.session_bus).parent)
        read_end, write_end = os.pipe()
        argv = ["dbus-daemon", "--session", "--nofork", "--nopidfile",
                f"--address=unix:path={self.config.session_bus}",
                f"--print-address={write_end}"]
        try:
            supervisor.spawn("dbus-daemon", argv, pass_fds=(write_end,))
        except StartupFailed:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._address_pipe = read_end

    def wait_ready(self) -> None:
        """Return once the bus listens (it prints its address then); StartupFailed otherwise."""
        if self._address_pipe is None:
            return
        with os.fdopen(self._address_pipe, "rb") as stream:
            self._address_pipe = None
            deadline = time.monotonic() + self.config.ready_timeout_s
            if not read_line_before(stream.fileno(), deadline).strip():
                raise StartupFailed("the session bus (dbus-daemon) exited before it was ready")


def start_openbox(supervisor: Supervisor, config: DesktopConfig) -> None:
    """Start openbox and wait until it has taken over the screen (its --startup hook ran)."""
    argv = ["openbox", "--startup", f"touch {OPENBOX_MARKER}"]
    rc_file = DESKTOP_DIR / "openbox-rc.xml"
    if rc_file.is_file():
        argv += ["--config-file", str(rc_file)]
    process = supervisor.spawn("openbox", argv)
    wait_until(OPENBOX_MARKER.exists, "openbox", process, config.ready_timeout_s)


def wait_until(is_ready: Callable[[], bool], name: str, process: subprocess.Popen[bytes],
               timeout_s: float) -> None:
    """Poll a readiness condition while the service lives; StartupFailed otherwise."""
    deadline = time.monotonic() + timeout_s
    while not is_ready():
        if process.poll() is not None:
            raise StartupFailed(f"{name} exited before it was ready")
        if time.monotonic() > deadline:
            raise StartupFailed(f"{name} was not ready within {timeout_s:g}s")
        time.sleep(0.005)


def start_x11vnc(supervisor: Supervisor, config: DesktopConfig, xauthority: Path) -> None:
    """Start x11vnc on the loopback only, password from the private file (deleted once read)."""
    if not VNC_PASSWORD_FILE.is_file():
        raise StartupFailed(f"DESKHAND_VNC={config.vnc_mode} needs {PASSWORD_VARIABLE}")
    argv = ["x11vnc", "-display", config.display, "-auth", str(xauthority),
            "-localhost", "-rfbport", str(VNC_PORT), "-passwdfile", f"rm:{VNC_PASSWORD_FILE}",
            "-forever", "-shared", "-norc", "-nocmds", "-noremote", "-nosel",
            "-nolookup", "-noxdamage", "-quiet"]
    if config.vnc_mode == "view":
        argv.append("-viewonly")
    process = supervisor.spawn("x11vnc", argv)
    wait_until(lambda: loopback_port_listening(VNC_PORT), "x11vnc", process,
               config.ready_timeout_s)


def loopback_port_listening(port: int) -> bool:
    """Whether a TCP socket listens on 127.0.0.1:port, read from /proc so no probe connects."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        return any(fields[1] == wanted and fields[3] == "0A"
                   for fields in (line.split() for line in table))


def mark_ready(config: DesktopConfig, timings: str) -> None:
    READY_FILE.write_text(f"display={config.display} screen={config.screen} "
                          f"vnc={config.vnc_mode}\n")
    say(f"desktop ready on {config.display} ({config.screen}, vnc {config.vnc_mode}): {timings}")


# --- commands ----------------------------------------------------------------------------------

def on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def run_desktop(argv: Sequence[str]) -> int:
    stash_password_and_reexec(argv)
    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    supervisor = Supervisor()
    try:
        config = DesktopConfig.from_environ(os.environ)
        start_desktop(supervisor, config)
        return supervisor.watch()
    except StartupFailed as exc:
        say(f"startup failed: {exc}")
        return 1
    except Terminated as exc:
        say(f"stopping on {exc}")
        return 0
    finally:
        supervisor.stop_all()


def start_desktop(supervisor: Supervisor, config: DesktopConfig) -> None:
    prepare_runtime_dirs(os.environ)
    xauthority = Path(os.environ.get("XAUTHORITY", Path.home() / ".Xauthority"))
    write_xauthority(xauthority, config.display_number)
    bus = SessionBus(supervisor, config)
    timings = [timed("Xvfb", lambda: start_xvfb(supervisor, config, xauthority)),
               timed("openbox", lambda: start_openbox(supervisor, config)),
               timed("session bus", bus.wait_ready)]
    if config.vnc_mode != "off":
        timings.append(timed("x11vnc", lambda: start_x11vnc(supervisor, config, xauthority)))
    mark_ready(config, ", ".join(timings))


def timed(name: str, start: Callable[[], None]) -> str:
    """Run one start-up stage; return ``name N ms`` for the ready line."""
    began = time.monotonic()
    start()
    return f"{name} {(time.monotonic() - began) * 1000:.0f} ms"


def run_executor(args: Sequence[str]) -> int:
    """Load the executor while the desktop comes up, then run it once the desktop is ready.

    Runs under the executor's own python (the image's venv).  Importing the
    executor's libraries takes about as long as starting Xvfb and openbox, so
    doing both at once shortens every sandbox start.
    """
    executor = load_executor_quietly()
    timeout_s = float(os.environ.get("DESKHAND_READY_TIMEOUT_S", "15"))
    deadline = time.monotonic() + timeout_s
    while not READY_FILE.exists():
        if time.monotonic() > deadline:
            say(f"the desktop was not ready within {timeout_s:g}s")
            return 1
        time.sleep(0.005)
    return int(executor.main(list(args)))


def load_executor_quietly() -> ModuleType:
    """Import the executor package (next to this file) and its request handling; anything
    printed meanwhile goes to stderr, since stdout is the executor's channel and belongs
    to nobody else."""
    sys.stdout.flush()
    channel = os.dup(1)
    os.dup2(2, 1)
    try:
        return importlib.import_module(f"{EXECUTOR_PACKAGE}.serve")
    finally:
        sys.stdout.flush()
        os.dup2(channel, 1)
        os.close(channel)


def main(argv: Sequence[str]) -> int:
    command = argv[1] if len(argv) > 1 else "desktop"
    if command == "desktop":
        return run_desktop(argv)
    if command == "run-executor":
        return run_executor(argv[2:])
    say(f"unknown command {command!r}; use 'desktop' or 'run-executor'")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
