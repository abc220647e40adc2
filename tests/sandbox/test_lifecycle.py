"""The local sandbox's state machine, missing programs, and that no process outlives it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.actions import Screenshot
from sandbox.base import Sandbox, Size
from sandbox.errors import SandboxCrashed, SandboxStateError, SandboxUnavailable
from sandbox.executor import EXECUTOR_FILE
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.x11

BWRAP_MODES = [pytest.param(True, id="bwrap"), pytest.param(False, id="plain")]
Process = tuple[int, str]  # pid and start time: a pid alone may be reused

OWNER = """
import sys, time
from sandbox.local import LocalSandbox
with LocalSandbox(use_bwrap=sys.argv[1] == "1"):
    print("ready", flush=True)
    time.sleep(600)
"""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields after "pid (comm)", from state on


def descendants(root: int) -> set[Process]:
    """Every living process under ``root``, as (pid, start time)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[Process] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is not None:
            found.add((pid, fields[19]))
            todo += children.get(pid, [])
    return found


def processes_running(argv: list[str]) -> set[Process]:
    wanted = "\0".join(argv).encode() + b"\0"
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            matches = Path(f"/proc/{entry}/cmdline").read_bytes() == wanted
        except OSError:
            continue
        fields = _stat(int(entry))
        if matches and fields is not None:
            found.add((int(entry), fields[19]))
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Those still running (zombies waiting for a parent's wait() count as gone)."""
    left = set()
    for pid, started in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == started and fields[0] != "Z":
            left.add((pid, started))
    return left


def wait_gone(processes: set[Process], timeout_s: float = 10.0) -> set[Process]:
    give_up = time.monotonic() + timeout_s
    while alive(processes) and time.monotonic() < give_up:
        time.sleep(0.05)
    return alive(processes)


# --- state machine ------------------------------------------------------------------------------


def test_it_is_a_sandbox_of_kind_local_without_a_viewer() -> None:
    box = LocalSandbox(size=Size(800, 600))
    assert isinstance(box, Sandbox)
    assert (box.kind, box.viewer, box.size) == ("local", None, Size(800, 600))


def test_use_before_start_is_a_state_error() -> None:
    box = LocalSandbox()
    with pytest.raises(SandboxStateError, match="new"):
        box.screenshot()
    with pytest.raises(SandboxStateError):
        box.check(["true"])


def test_start_twice_and_use_after_stop_are_state_errors() -> None:
    box = LocalSandbox(size=Size(640, 480))
    with box:
        assert box.screenshot().size == Size(640, 480)
        with pytest.raises(SandboxStateError, match="running"):
            box.start()
    with pytest.raises(SandboxStateError, match="stopped"):
        box.execute(Screenshot())
    with pytest.raises(SandboxStateError, match="used once"):
        box.start()
    box.stop()  # stopping again is harmless


def test_stop_before_start_makes_it_unusable() -> None:
    box = LocalSandbox()
    box.stop()
    with pytest.raises(SandboxStateError):
        box.start()


# --- missing programs ---------------------------------------------------------------------------


def _bin_with(tmp_path: Path, *programs: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in programs:
        (folder / name).symlink_to(f"/usr/bin/{name}")
    return str(folder)


@pytest.mark.parametrize(("present", "package"), [
    ((), "apt-get install xvfb"),
    (("Xvfb",), "apt-get install openbox"),
])
def test_a_missing_program_names_its_debian_package(tmp_path: Path, present: tuple[str, ...],
                                                    package: str) -> None:
    box = LocalSandbox(search_path=_bin_with(tmp_path, *present))
    with pytest.raises(SandboxUnavailable, match=package):
        box.start()
    with pytest.raises(SandboxStateError):
        box.screenshot()


def test_requiring_bubblewrap_without_it_is_unavailable(tmp_path: Path) -> None:
    box = LocalSandbox(use_bwrap=True, search_path=_bin_with(tmp_path, "Xvfb", "openbox"))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        box.start()


def test_without_bubblewrap_it_falls_back_with_a_warning(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with LocalSandbox(search_path=_bin_with(tmp_path, "Xvfb", "openbox", "setpriv")) as box:
        assert box.isolated is False
        home = box.check(["sh", "-c", "echo $HOME"]).stdout.strip()
    assert "without bubblewrap" in caplog.text
    assert home != str(Path.home())  # a private folder stands in for the home


# --- isolation ----------------------------------------------------------------------------------


def test_bubblewrap_hides_the_network_the_home_and_the_environment(tmp_path: Path) -> None:
    os.environ["DESKHAND_TEST_SECRET"] = "s3cret"
    try:
        with LocalSandbox(use_bwrap=True) as box:
            assert box.isolated is True
            env = box.check(["env"]).stdout
            links = box.check(["cat", "/proc/net/dev"]).stdout
            box.check(["sh", "-c", "echo inside > ~/marker"])
            home_files = box.check(["ls", "-A", "."]).stdout.split()
    finally:
        del os.environ["DESKHAND_TEST_SECRET"]
    assert "s3cret" not in env
    assert "LANG=C.UTF-8" in env
    assert [line.split(":")[0].strip() for line in links.splitlines()[2:]] == ["lo"]
    assert "marker" in home_files
    assert not (Path.home() / "marker").exists()


# --- no process outlives the sandbox ------------------------------------------------------------


@pytest.mark.parametrize("use_bwrap", BWRAP_MODES)
def test_stop_ends_every_child(use_bwrap: bool) -> None:
    before = descendants(os.getpid())
    nap = f"{300 + os.getpid() % 1000}.{int(use_bwrap)}"  # marks the straggler's command line
    with LocalSandbox(use_bwrap=use_bwrap) as box:
        box.check(["sh", "-c", f"sleep {nap} >/dev/null 2>&1 &"])  # outlives its parent shell
        ours = descendants(os.getpid()) - before
        stragglers = processes_running(["sleep", nap])
        assert len(ours) >= 3  # at least: executor, Xvfb, openbox
        assert len(stragglers) == 1
    assert wait_gone(ours | stragglers) == set()


def _start_owner(use_bwrap: bool) -> subprocess.Popen[str]:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, "1" if use_bwrap else "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready", owner.stderr.read() if owner.stderr else ""
    return owner


@pytest.mark.parametrize("use_bwrap", BWRAP_MODES)
def test_sigkill_of_the_owner_takes_every_child_down(use_bwrap: bool) -> None:
    owner = _start_owner(use_bwrap)
    children = descendants(owner.pid)
    assert len(children) >= 3
    leftovers = private_folders(children)  # a killed owner cannot delete them; we do
    owner.kill()
    owner.communicate()
    assert wait_gone(children) == set()
    for folder in leftovers:
        shutil.rmtree(folder)


def private_folders(processes: set[Process]) -> set[Path]:
    """The temporary folders (outside bubblewrap) that hold the sandbox's home."""
    folders = set()
    for pid, _ in processes:
        with contextlib.suppress(OSError):
            for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                home = Path(item.decode().removeprefix("HOME=")) if item.startswith(b"HOME=") \
                    else None
                if home is not None and home.parent.name.startswith("deskhand-local-"):
                    folders.add(home.parent)
    return folders


@pytest.mark.parametrize("use_bwrap", BWRAP_MODES)
def test_ctrl_c_in_the_owner_stops_the_sandbox(use_bwrap: bool) -> None:
    owner = _start_owner(use_bwrap)
    children = descendants(owner.pid)
    owner.send_signal(signal.SIGINT)
    try:
        _, stderr = owner.communicate(timeout=30)
    finally:  # an owner that did not stop must not outlive the test
        if owner.poll() is None:
            owner.kill()
            owner.communicate()
    assert "KeyboardInterrupt" in stderr
    assert wait_gone(children, timeout_s=1.0) == set()


def test_a_dead_executor_is_reported_as_a_crash_and_stop_still_cleans_up() -> None:
    box = LocalSandbox()
    box.start()
    try:
        assert box.pid is not None
        children = descendants(box.pid) | {(box.pid, (_stat(box.pid) or [""] * 20)[19])}
        executor = [pid for pid, _ in children
                    if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2]
                    == [str(EXECUTOR_FILE).encode()]]
        os.kill(executor[0], signal.SIGKILL)
        with pytest.raises(SandboxCrashed, match="executor") as caught:
            box.screenshot()
        assert "sandbox log" in str(caught.value)  # the crash comes with what it said last
    finally:
        box.stop()
    assert wait_gone(children) == set()
