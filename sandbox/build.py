"""Build the desktop image, from nothing but Debian's and PyPI's packages.

:func:`build_image` runs four phases, each reported to a :class:`BuildProgress`:

1. **base image** - use ``debian:bookworm-slim`` if the engine has it, else try a
   pull, else bootstrap it: ``mmdebstrap`` (reading the host's apt sources) writes
   a tarball that the engine imports under the same name.
2. **wheels** - the executor's pinned dependencies, built or downloaded on the
   host (pip inside a build container cannot reach PyPI here), cached by the
   hash of the requirement files.
3. **context** - Dockerfile, entrypoint, VNC bridge, executor, desktop config and
   wheels copied into one folder whose sha256 decides whether to rebuild.
4. **docker build** - streamed step by step; skipped when the image already
   carries the same context hash in its ``deskhand.context-sha256`` label.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors

from sandbox.errors import SandboxUnavailable

# DESKHAND_IMAGE / DESKHAND_BROWSER_IMAGE name other tags, to keep two builds side by side
# (a checkout whose image differs from main's does not retag the one main's runs use).
DEFAULT_IMAGE = os.environ.get("DESKHAND_IMAGE") or "deskhand/desktop:latest"
BROWSER_IMAGE = os.environ.get("DESKHAND_BROWSER_IMAGE") or "deskhand/desktop:browser"
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"
CONTEXT_LABEL = "deskhand.context-sha256"
IMAGE_PYTHON = "3.11"  # bookworm's python3; the native wheels must match it

SANDBOX_DIR = Path(__file__).resolve().parent
IMAGE_SOURCE_DIR = SANDBOX_DIR / "image"
EXECUTOR_DIR = SANDBOX_DIR / "executor"  # the whole package goes into the image
DESKTOP_DIR = SANDBOX_DIR / "desktop"
CONTEXT_FILES = ("Dockerfile", "entrypoint.py", "vnc_bridge.py", "egress_shim.py")
REQUIREMENT_FILES = ("requirements-native.txt", "requirements-pure.txt")
HOST_APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
FALLBACK_APT_SOURCE = "deb http://deb.debian.org/debian {suite} main\n"
# Written into the base's dpkg config, so later installs in the Dockerfile stay lean too.
LEAN_DPKG_OPTIONS = ("path-exclude=/usr/share/doc/*", "path-exclude=/usr/share/man/*",
                     "path-exclude=/usr/share/info/*")


def default_cache_dir() -> Path:
    """Where built wheels and contexts are kept between builds."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deskhand"


def image_for(*, browser: bool) -> str:
    """The image tag deskhand builds and runs, with or without the web browser."""
    return BROWSER_IMAGE if browser else DEFAULT_IMAGE


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What to build; ``cache_dir`` keeps wheels, the context and bootstrap scratch."""

    cache_dir: Path
    image: str = DEFAULT_IMAGE
    base_image: str = DEFAULT_BASE_IMAGE
    browser: bool = False
    force: bool = False
    pip: Sequence[str] = field(default_factory=lambda: (sys.executable, "-m", "pip"))

    @property
    def build_args(self) -> dict[str, str]:
        return {"BASE_IMAGE": self.base_image, "WITH_BROWSER": "1" if self.browser else "0"}


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    image: str
    image_id: str
    context_sha256: str
    built: bool
    seconds: float


class BuildProgress(Protocol):
    """Receives what a build is doing; the CLI shows it with rich, tests ignore it."""

    def phase(self, name: str, detail: str = "") -> None: ...

    def step(self, current: int, total: int, instruction: str) -> None: ...

    def output(self, line: str) -> None: ...

    def phase_done(self, name: str, detail: str = "") -> None: ...


class SilentProgress:
    """A progress sink that keeps only the last lines of output, for error messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase(self, name: str, detail: str = "") -> None:
        self.lines.append(f"== {name} {detail}".rstrip())

    def step(self, current: int, total: int, instruction: str) -> None:
        self.lines.append(f"step {current}/{total}: {instruction}")

    def output(self, line: str) -> None:
        self.lines = [*self.lines[-199:], line]

    def phase_done(self, name: str, detail: str = "") -> None:
        self.lines.append(f"== {name} done {detail}".rstrip())


def build_image(client: docker.DockerClient, options: BuildOptions,
                progress: BuildProgress) -> BuildOutcome:
    """Make sure ``options.image`` exists and matches the current sources; build if not."""
    started = time.monotonic()
    base_id = ensure_base_image(client, options, progress)
    wheels = ensure_wheels(options, progress)
    context = options.cache_dir / "context" / safe_name(options.image)
    progress.phase("context")
    assemble_context(context, wheels)
    digest = context_digest(context, {**options.build_args, "base": base_id})
    progress.phase_done("context", digest[:12])
    current = image_with_label(client, options.image, digest)
    if current is not None and not options.force:
        progress.phase_done("docker build", "up to date")
        return BuildOutcome(options.image, current, digest, False, time.monotonic() - started)
    image_id = run_docker_build(client, context, options, digest, progress)
    prune_replaced_images(client)
    return BuildOutcome(options.image, image_id, digest, True, time.monotonic() - started)


def prune_replaced_images(client: docker.DockerClient) -> None:
    """Drop untagged deskhand images that rebuilds replaced (the engine keeps those in use)."""
    with contextlib.suppress(docker.errors.DockerException):
        client.images.prune(filters={"dangling": True, "label": CONTEXT_LABEL})


def safe_name(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", image)


def image_with_label(client: docker.DockerClient, image: str, digest: str) -> str | None:
    """The id of ``image`` if it exists and was built from the context ``digest``."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"cannot inspect image {image}: {exc}") from exc
    return str(found.id) if found.labels.get(CONTEXT_LABEL) == digest else None


# --- phase 1: base image ----------------------------------------------------------------------

def ensure_base_image(client: docker.DockerClient, options: BuildOptions,
                      progress: BuildProgress) -> str:
    """Return the base image's id, pulling or bootstrapping it when the engine lacks it."""
    progress.phase("base image", options.base_image)
    image_id = local_image_id(client, options.base_image)
    if image_id is None and not pull_image(client, options.base_image, progress):
        bootstrap_base_image(client, options, progress)
        image_id = local_image_id(client, options.base_image)
    if image_id is None:
        raise SandboxUnavailable(f"base image {options.base_image} is still missing")
    progress.phase_done("base image", image_id[7:19])
    return image_id


def local_image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"the Docker engine did not answer: {exc}") from exc


def pull_image(client: docker.DockerClient, name: str, progress: BuildProgress) -> bool:
    """Try a registry pull; False (not an error) when no registry is reachable."""
    repository, _, tag = name.partition(":")
    try:
        for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            progress.output(str(event.get("status", event)))
    except docker.errors.DockerException as exc:
        progress.output(f"pull failed, bootstrapping instead: {exc}")
        return False
    return True


def bootstrap_base_image(client: docker.DockerClient, options: BuildOptions,
                         progress: BuildProgress) -> None:
    """mmdebstrap a minimal Debian from the host's apt sources, import it as the base."""
    repository, suite = debian_suite_of(options.base_image)
    scratch = options.cache_dir / "bootstrap"
    scratch.mkdir(parents=True, exist_ok=True)
    tarball = scratch / f"{suite}.tar"
    try:
        run_streamed(mmdebstrap_command(suite, tarball), progress,
                     stdin_text=host_apt_sources(suite), what="mmdebstrap")
        progress.output(f"importing {tarball.name} as {options.base_image}")
        client.api.import_image_from_file(
            str(tarball), repository=repository, tag=options.base_image.partition(":")[2],
            changes=['CMD ["bash"]', "ENV LANG=C.UTF-8"])
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"cannot import the bootstrapped base image: {exc}") from exc
    finally:
        tarball.unlink(missing_ok=True)


def debian_suite_of(base_image: str) -> tuple[str, str]:
    """``debian:bookworm-slim`` -> (``debian``, ``bookworm``); other bases cannot be made here."""
    repository, _, tag = base_image.partition(":")
    if repository != "debian" or not tag:
        raise SandboxUnavailable(
            f"base image {base_image} is missing and only debian:<suite>[-slim] can be "
            "bootstrapped locally; load it into the engine or pass another --base")
    return repository, tag.split("-")[0]


def mmdebstrap_command(suite: str, tarball: Path) -> list[str]:
    if shutil.which("mmdebstrap") is None:
        raise SandboxUnavailable("mmdebstrap is needed to bootstrap the base image: "
                                 "apt-get install mmdebstrap")
    dpkg_options = [f"--dpkgopt={option}" for option in LEAN_DPKG_OPTIONS]
    return ["mmdebstrap", "--variant=minbase", "--format=tar", *dpkg_options,
            "--aptopt=APT::Install-Recommends \"false\"", suite, str(tarball), "-"]


def host_apt_sources(suite: str) -> str:
    """The host's Debian apt sources (one-line and deb822 files), or deb.debian.org."""
    texts = [path.read_text() for path in apt_source_files()]
    debian_texts = [text for text in texts if "debian" in text and suite in text]
    return "\n".join(debian_texts) or FALLBACK_APT_SOURCE.format(suite=suite)


def apt_source_files() -> Iterator[Path]:
    for location in HOST_APT_SOURCES:
        if location.is_file():
            yield location
        elif location.is_dir():
            yield from sorted(p for p in location.iterdir() if p.suffix in {".list", ".sources"})


# --- phase 2: wheels --------------------------------------------------------------------------

def ensure_wheels(options: BuildOptions, progress: BuildProgress) -> Path:
    """Wheels for the executor's dependencies, cached by requirement files and machine."""
    progress.phase("wheels")
    target = options.cache_dir / "wheels" / wheels_key()
    if not (target / ".complete").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for command in wheel_commands(options.pip, partial):
            run_streamed(command, progress, what="pip")
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    progress.phase_done("wheels", f"{len(list(target.glob('*.whl')))} wheels")
    return target


def wheels_key() -> str:
    digest = hashlib.sha256(platform.machine().encode())
    for name in REQUIREMENT_FILES:
        digest.update((IMAGE_SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def wheel_commands(pip: Sequence[str], target: Path) -> list[list[str]]:
    machine = platform.machine()
    native = ["download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
              "--python-version", IMAGE_PYTHON, "--abi", "cp" + IMAGE_PYTHON.replace(".", ""),
              *platform_options(machine), "--dest", str(target),
              "-r", str(IMAGE_SOURCE_DIR / "requirements-native.txt")]
    pure = ["wheel", "--no-deps", "--wheel-dir", str(target),
            "-r", str(IMAGE_SOURCE_DIR / "requirements-pure.txt")]
    quiet = ["--disable-pip-version-check", "--progress-bar", "off"]
    return [[*pip, native[0], *quiet, *native[1:]], [*pip, pure[0], *quiet, *pure[1:]]]


def platform_options(machine: str) -> list[str]:
    """Wheel platforms bookworm's glibc (2.36) runs; pip does not widen a --platform itself."""
    tags = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014")
    return [option for tag in tags for option in ("--platform", f"{tag}_{machine}")]


# --- phase 3: context -------------------------------------------------------------------------

def assemble_context(target: Path, wheels: Path) -> None:
    """Lay out everything the Dockerfile copies, and nothing else."""
    if not (EXECUTOR_DIR / "serve.py").is_file():
        raise SandboxUnavailable(f"{EXECUTOR_DIR} is incomplete: the image needs the executor")
    shutil.rmtree(target, ignore_errors=True)
    for folder in ("executor", "desktop", "wheels"):
        (target / folder).mkdir(parents=True)
    for name in CONTEXT_FILES:
        shutil.copyfile(IMAGE_SOURCE_DIR / name, target / name)
    copy_files(executor_files(), target / "executor")
    copy_files(desktop_config_files(), target / "desktop", relative_to=DESKTOP_DIR)
    copy_files(wheels.glob("*.whl"), target / "wheels")


def executor_files() -> list[Path]:
    """The executor package's modules (no caches)."""
    return sorted(EXECUTOR_DIR.glob("*.py"))


def desktop_config_files() -> list[Path]:
    """The shared desktop config (any depth), without its python helpers."""
    if not DESKTOP_DIR.is_dir():
        return []
    return sorted(path for path in DESKTOP_DIR.rglob("*")
                  if path.is_file() and path.suffix not in {".py", ".pyc"}
                  and not _hidden(path.relative_to(DESKTOP_DIR)))


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "__")) for part in relative.parts)


def copy_files(sources: Iterable[Path], folder: Path, *, relative_to: Path | None = None) -> None:
    for source in sources:
        target = folder / (source.relative_to(relative_to) if relative_to else source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def context_digest(root: Path, extra: Mapping[str, str]) -> str:
    """sha256 over every file's relative path and bytes, plus the build arguments."""
    digest = hashlib.sha256(json.dumps(dict(sorted(extra.items()))).encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# --- phase 4: docker build --------------------------------------------------------------------

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def run_docker_build(client: docker.DockerClient, context: Path, options: BuildOptions,
                     digest: str, progress: BuildProgress) -> str:
    """Stream a classic-builder build; return the new image id."""
    progress.phase("docker build", options.image)
    labels = {CONTEXT_LABEL: digest, "deskhand.browser": str(options.browser).lower()}
    try:
        events = client.api.build(path=str(context), tag=options.image,
                                  buildargs=options.build_args, labels=labels, rm=True,
                                  forcerm=True, pull=False, decode=True)
        image_id = follow_build(events, progress)
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"docker build of {options.image} failed: {exc}") from exc
    progress.phase_done("docker build", image_id[7:19])
    return image_id


def follow_build(events: Iterable[dict[str, Any]], progress: BuildProgress) -> str:
    """Report a build's stream; return the image id, or raise with the output's last lines."""
    image_id = ""
    tail: deque[str] = deque(maxlen=25)
    for event in events:
        if "error" in event:
            raise SandboxUnavailable(f"docker build failed: {str(event['error']).strip()}\n"
                                     + "\n".join(tail))
        image_id = event.get("aux", {}).get("ID", image_id)
        for line in str(event.get("stream", "")).splitlines():
            tail.append(line)
            report_build_line(line, progress)
    if not image_id:
        raise SandboxUnavailable("docker build finished without naming an image")
    return image_id


def report_build_line(line: str, progress: BuildProgress) -> None:
    match = _STEP.match(line)
    if match:
        progress.step(int(match[1]), int(match[2]), match[3])
    elif line.strip():
        progress.output(line)


# --- helpers ----------------------------------------------------------------------------------

def run_streamed(argv: list[str], progress: BuildProgress, *, what: str,
                 stdin_text: str | None = None) -> None:
    """Run a host command, forwarding its output lines; SandboxUnavailable when it fails."""
    with tempfile.TemporaryFile("w+") as stdin:
        stdin.write(stdin_text or "")
        stdin.seek(0)
        try:
            process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot run {what}: {exc}") from exc
    with process:
        tail = forward_lines(process, progress)
    if process.returncode != 0:
        raise SandboxUnavailable(f"{what} failed (exit {process.returncode}):\n" + "\n".join(tail))


def forward_lines(process: subprocess.Popen[str], progress: BuildProgress) -> list[str]:
    """Send each output line to ``progress``; return the last twenty for an error message."""
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        progress.output(line.rstrip())
        tail = [*tail[-19:], line.rstrip()]
    return tail
