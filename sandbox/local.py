"""The local sandbox: Xvfb + openbox + the executor as child processes.

When bubblewrap is installed, all three run inside one ``bwrap`` with no
network, their own PID/IPC/UTS namespaces, a read-only view of ``/``, a private
tmpfs for ``/tmp``, ``/run``, ``/home`` and the home directory (the deskhand
checkout and its Python are bound back read-only when they live there), and a
clean environment (no API keys leak in).  Without bubblewrap they run as plain
children in a private temporary home, which isolates nothing: a one-line
warning says so.

Every child dies with the sandbox: ``stop()`` ends them; if the owning process
is killed, bubblewrap's ``--die-with-parent`` or ``PR_SET_PDEATHSIG`` (set
through ``setpriv``) takes them down.  Parent death is tracked per thread by
the kernel, so start a sandbox from a thread that outlives it.

::

    with LocalSandbox(size=Size(1280, 800)) as box:
        frame = box.screenshot()
        box.execute(Key(keys=["ctrl", "alt", "t"]))
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sandbox.base import Size
from sandbox.channel import FAST, ExecutorChannel, SettleDefaults
from sandbox.desktop import DESKTOP_DIR, SESSION_FILE
from sandbox.errors import SandboxCrashed, SandboxUnavailable
from sandbox.executor import EXECUTOR_FILE
from sandbox.executor_backed import ExecutorSandbox

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 3.0
LOG_TAIL_BYTES = 1 << 16
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# The second gate: bubblewrap binds this read-only over the system bashrc, and the
# executor serves the gate it talks to (sandbox/executor/gate.py).
GATE_BASHRC = DESKTOP_DIR / "bash.bashrc"
SYSTEM_BASHRC = Path("/etc/bash.bashrc")
DEFAULT_SETTLE = FAST
_PACKAGES = {"Xvfb": "xvfb", "openbox": "openbox", "bwrap": "bubblewrap"}


@dataclass(frozen=True, slots=True)
class _Programs:
    xvfb: str
    openbox: str
    bwrap: str | None
    setpriv: str | None


class LocalSandbox(ExecutorSandbox):
    """A throw-away X desktop on this machine (see the module docstring)."""

    kind = "local"

    def __init__(self, *, size: Size = Size(1280, 800), use_bwrap: bool | None = None,
                 python: str = sys.executable,
                 settle_defaults: SettleDefaults = DEFAULT_SETTLE,
                 start_timeout_s: float = 30.0, search_path: str | None = None) -> None:
        """``use_bwrap``: True requires bubblewrap, False never uses it, None uses it when
        it works.  ``python`` runs the executor and needs python-xlib, mss and Pillow.
        ``search_path`` is where to look for Xvfb, openbox and bwrap (default: $PATH)."""
        super().__init__(size=size, settle_defaults=settle_defaults)
        self._use_bwrap = use_bwrap
        self._python = python
        self._start_timeout_s = start_timeout_s
        self._search_path = search_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None  # private home and tmp when not in bubblewrap
        self._log: IO[bytes] | None = None  # the sandbox's stderr; unlinked, so never left behind
        self.isolated = False
        """True once started inside bubblewrap."""

    @property
    def pid(self) -> int | None:
        """The host PID of the sandbox's top process (bwrap, or the executor)."""
        return None if self._proc is None else self._proc.pid

    # --- lifecycle -------------------------------------------------------------------------

    def _open(self) -> None:
        """Start the desktop and the executor; raises :class:`SandboxUnavailable` when a
        program is missing and :class:`SandboxCrashed` when the desktop fails to come up."""
        self._launch(self._find_programs())
        self._greet()

    def _find_programs(self) -> _Programs:
        found = {name: shutil.which(name, path=self._search_path) for name in _PACKAGES}
        for name in ("Xvfb", "openbox"):
            if found[name] is None:
                raise SandboxUnavailable(f"{name} is not installed: the local sandbox needs "
                                         f"it (Debian/Ubuntu: apt-get install {_PACKAGES[name]})")
        bwrap = self._pick_bwrap(found["bwrap"])
        return _Programs(xvfb=str(found["Xvfb"]), openbox=str(found["openbox"]), bwrap=bwrap,
                         setpriv=shutil.which("setpriv", path=self._search_path))

    def _pick_bwrap(self, bwrap: str | None) -> str | None:
        if self._use_bwrap is False:
            return None
        problem = "it is not installed" if bwrap is None else _bwrap_problem(bwrap)
        if problem is None:
            return bwrap
        if self._use_bwrap:
            raise SandboxUnavailable(f"bubblewrap cannot be used: {problem} "
                                     "(Debian/Ubuntu: apt-get install bubblewrap)")
        log.warning("local sandbox without bubblewrap (%s): no network or file isolation",
                    problem)
        return None

    def _launch(self, programs: _Programs) -> None:
        if programs.bwrap:  # the real home path gets an empty tmpfs inside
            home = _user_home()
            env = _sandbox_env(home)
            gate = SYSTEM_BASHRC.is_file()  # bwrap can bind over it only where it exists
            if gate:
                env["DESKHAND_SHELL_GATE"] = "1"
            argv = _bwrap_argv(programs.bwrap, home, env, self._kept_paths(), gate=gate)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="deskhand-local-"))
            home = self._workdir / "home"
            home.mkdir()
            env = {**_sandbox_env(home), "TMPDIR": str(self._workdir)}
            argv = _pdeathsig(programs.setpriv)
        self._spawn(argv + self._desktop_command(programs), env,
                    cwd=Path("/") if programs.bwrap else home)
        self.isolated = programs.bwrap is not None

    def _desktop_command(self, programs: _Programs) -> list[str]:
        """session.py brings up Xvfb and openbox, then becomes the executor."""
        return [self._python, str(SESSION_FILE), "--size", str(self._size),
                "--timeout", f"{self._start_timeout_s:g}", "--xvfb", programs.xvfb,
                "--openbox", programs.openbox, "--", self._python, str(EXECUTOR_FILE)]

    def _kept_paths(self) -> list[Path]:
        """What must stay readable inside bubblewrap: the checkout and the Python."""
        python = Path(self._python)
        paths = {REPO_DIR, python.parent.parent, python.resolve().parent.parent}
        if os.path.realpath(self._python) == os.path.realpath(sys.executable):
            paths |= {Path(sys.prefix), Path(sys.base_prefix)}
        return sorted(paths)

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self._log = tempfile.TemporaryFile(prefix="deskhand-local-log-")  # noqa: SIM115
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, env=env, cwd=cwd,
                                      start_new_session=True)
        assert self._proc.stdout is not None
        assert self._proc.stdin is not None
        self._channel = ExecutorChannel(self._proc.stdout, self._proc.stdin)

    def _greet(self) -> None:
        result = self._call("hello", {}, self._start_timeout_s).result
        width, height = result.get("width"), result.get("height")
        if (width, height) != (self._size.width, self._size.height):
            raise SandboxCrashed(f"the sandbox screen is {width}x{height}, not {self._size}")

    def _teardown(self) -> None:
        """Stop the processes (politely, then by force), then delete the files."""
        if self._channel is not None:
            self._channel.close()
        if self._proc is not None:
            _end_process_group(self._proc)
        if self._channel is not None:
            self._channel.join(STOP_TIMEOUT_S)  # it sees end of stream once the process is gone
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- use -------------------------------------------------------------------------------

    @property
    def writable_roots(self) -> tuple[str, ...]:
        """Home and /tmp inside bubblewrap (both private tmpfs); without it the private
        folder that holds the home and $TMPDIR (the host's /tmp is not the sandbox's)."""
        if self._workdir is None:
            return ("~", "/tmp")
        return ("~", str(self._workdir))

    def _crashed(self, message: str) -> SandboxCrashed:
        return SandboxCrashed(f"{message}{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        if self._log is None:
            return ""
        fd = self._log.fileno()
        try:
            data = os.pread(fd, LOG_TAIL_BYTES, max(0, os.fstat(fd).st_size - LOG_TAIL_BYTES))
        except OSError:
            return ""
        tail = "\n".join(data.decode(errors="replace").strip().splitlines()[-lines:])
        return f"\n--- sandbox log (last lines) ---\n{tail}" if tail else ""


# --- helpers ---------------------------------------------------------------------------------


def _user_home() -> Path:
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def _sandbox_env(home: Path) -> dict[str, str]:
    """The whole environment of the sandbox: nothing of the host's leaks in."""
    user = pwd.getpwuid(os.getuid()).pw_name
    return {"PATH": SANDBOX_PATH, "HOME": str(home), "USER": user, "LOGNAME": user,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm",
            "XDG_CONFIG_DIRS": f"{DESKTOP_DIR}:/etc/xdg", "PYTHONDONTWRITEBYTECODE": "1"}


def _bwrap_problem(bwrap: str) -> str | None:
    """Why bubblewrap cannot make our namespaces here, or None when it can."""
    try:
        proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                               "--die-with-parent", "--", "true"],
                              capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        return proc.stderr.decode(errors="replace").strip() or f"status {proc.returncode}"
    return None


def _hidden_dirs(home: Path) -> list[Path]:
    hidden = [Path("/tmp"), Path("/run"), Path("/dev/shm")]
    hidden += [path for path in (Path("/home"), Path("/var/run"))
               if path.is_dir() and not path.is_symlink()]
    return [*hidden, home]


def _bwrap_argv(bwrap: str, home: Path, env: dict[str, str], kept: list[Path], *,
                gate: bool = False) -> list[str]:
    hidden = _hidden_dirs(home)
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in hidden:
        argv += ["--tmpfs", str(folder)]
    for path in kept:  # bound back after the tmpfs mounts that would hide them
        if any(path.is_relative_to(folder) for folder in hidden) and path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    if gate:
        argv += ["--ro-bind", str(GATE_BASHRC), str(SYSTEM_BASHRC)]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--hostname", "deskhand", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    return [*argv, "--chdir", str(home), "--"]


def _pdeathsig(setpriv: str | None) -> list[str]:
    if setpriv is None:
        log.warning("setpriv not found: sandbox processes may outlive a killed parent")
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


def _end_process_group(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the top process to exit (or kill it), then kill whatever is left of its group.

    The group is killed while the top process is still an unreaped zombie, so its
    id cannot have been reused by then.
    """
    if not _exited(proc.pid, STOP_TIMEOUT_S):
        _kill_group(proc.pid)
        _exited(proc.pid, STOP_TIMEOUT_S)
    _kill_group(proc.pid)
    proc.wait()


def _exited(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` exited within ``timeout_s``, leaving it unreaped."""
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # already reaped
        if info is not None:
            return True
        if time.monotonic() >= give_up:
            return False
        time.sleep(0.01)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
        os.killpg(pgid, signal.SIGKILL)
