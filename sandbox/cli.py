"""``deskhand sandbox ...``: build the desktop image, run one to watch, list and clean up.

    deskhand sandbox build [--force] [--browser]
    deskhand sandbox up [--network] [--vnc-write] [--port 5901]
    deskhand sandbox ls
    deskhand sandbox down [ID | --all]
    deskhand sandbox prune

The Docker client is built here, at the edge, and passed down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from sandbox.errors import SandboxError, SandboxUnavailable

# The Docker SDK, the image builder and rich's progress bars load in the
# commands that use them: `deskhand --help` must not pay for them.
if TYPE_CHECKING:
    import docker
    from rich.progress import Progress, TaskID

    from sandbox.docker import DockerSandbox
    from sandbox.manage import SandboxContainer

console = Console(stderr=True)
T = TypeVar("T")
ClientFactory = Callable[[], "docker.DockerClient"]


def docker_client() -> docker.DockerClient:
    """A client for the engine named by the usual DOCKER_* variables; SandboxUnavailable if none."""
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(
            f"no Docker engine answers ({exc}); run scripts/ensure_docker.sh") from exc
    return client


def docker_available(client_factory: ClientFactory | None = None, *,
                     image: str | None = None) -> bool:
    """Whether the docker backend can run now: an engine answers and the image is built
    (:func:`sandbox.manage.docker_ready` also says why not)."""
    import docker

    from sandbox.build import image_for
    from sandbox.manage import docker_ready

    return docker_ready(client_factory or docker.from_env,
                        image=image or image_for(browser=False))[0]


class RichBuildProgress:
    """Shows a build's phases with spinners, and docker build's steps as a bar."""

    def __init__(self, progress: Progress, *, verbose: bool = False) -> None:
        self._progress = progress
        self._verbose = verbose
        self._tasks: dict[str, TaskID] = {}

    def phase(self, name: str, detail: str = "") -> None:
        label = f"{name} [dim]{detail}[/dim]" if detail else name
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(label, total=None)

    def step(self, current: int, total: int, instruction: str) -> None:
        task = self._tasks.get("docker build")
        if task is not None:
            self._progress.update(task, completed=current, total=total,
                                  description=f"docker build [dim]{instruction[:60]}[/dim]")

    def output(self, line: str) -> None:
        if self._verbose:
            self._progress.console.print(f"[dim]{line}[/dim]", highlight=False)

    def phase_done(self, name: str, detail: str = "") -> None:
        self.phase(name)
        task = self._tasks[name]
        self._progress.update(task, total=1, completed=1,
                              description=f"{name} [green]{detail}[/green]")


def build(force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
          browser: Annotated[bool, typer.Option(help="Include the chromium web browser.")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                                help="Show every build output line.")] = False,
          cache_dir: Annotated[Path | None, typer.Option(help="Wheels and context cache.")] = None,
          ) -> None:
    """Build (or verify) the desktop image; bootstraps the Debian base when none can be pulled."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from sandbox.build import BuildOptions, build_image, default_cache_dir, image_for

    options = BuildOptions(cache_dir=cache_dir or default_cache_dir(),
                           image=image_for(browser=browser), browser=browser, force=force)
    client = _client_or_exit()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        outcome = _or_exit(lambda: build_image(client, options, RichBuildProgress(
            progress, verbose=verbose)))
    verb = "built" if outcome.built else "up to date:"
    console.print(f"{verb} [bold]{outcome.image}[/bold] {outcome.image_id[7:19]} "
                  f"({outcome.seconds:.1f}s)")


def up(network: Annotated[bool, typer.Option(help="Give the desktop full network access.")]
       = False,
       vnc_write: Annotated[bool, typer.Option(help="Let the viewer use mouse and keyboard.")]
       = False,
       port: Annotated[int, typer.Option(help="Preferred loopback port for the viewer.")] = 5901,
       browser: Annotated[bool, typer.Option(help="Run the image with chromium.")] = False,
       ) -> None:
    """Start a desktop, print how to watch it over VNC, and wait for Ctrl-C.

    Ctrl-C, SIGTERM and SIGHUP remove the desktop and exit 0, also when they
    land during start-up; exit 1 when its container was removed from outside
    (``deskhand sandbox down``).
    """
    from sandbox.build import image_for
    from sandbox.docker import DockerSandbox, DockerSandboxConfig

    config = DockerSandboxConfig(image=image_for(browser=browser), network=network,
                                 vnc=True, vnc_write=vnc_write, vnc_port=port)
    sandbox = DockerSandbox(_client_or_exit(), config)
    try:
        removed = _run_until_stopped(sandbox)
    finally:
        sandbox.stop()
    if removed:
        console.print(f"the container {sandbox.container_id[:12]} was removed from outside "
                      "(`deskhand sandbox down`?); stopped")
        raise typer.Exit(1)
    console.print("stopped; the container is gone")


def _print_connection(sandbox: DockerSandbox) -> None:
    viewer = sandbox.viewer
    assert viewer is not None
    mode = "view only" if viewer.view_only else "[bold red]viewer can type and click[/]"
    network = "[bold red]full network[/]" if sandbox.network else "no network"
    console.print(f"desktop [bold]{sandbox.container_id[:12]}[/bold] is up ({network}, {mode})")
    console.print(f"  address  {viewer.host}:{viewer.port}")
    console.print(f"  password {viewer.password}")
    console.print(f"  connect  vncviewer {viewer.host}::{viewer.port}")
    console.print("Ctrl-C stops it.")


# How often `sandbox up` looks whether its container is still there.
UP_CHECK_S = 1.0


def _run_until_stopped(sandbox: DockerSandbox) -> bool:
    """Start the desktop, say how to watch it and wait: False when Ctrl-C, SIGTERM or
    SIGHUP stopped it, wherever they landed (a stop is raised right after the system
    call it arrived in, so also inside a start-up call or the print that tells the
    user to press Ctrl-C); True when the container vanished."""
    try:
        _or_exit(sandbox.start)
        _print_connection(sandbox)
        _wait_for_removal(sandbox)
    except KeyboardInterrupt:
        console.print()
        return False
    return True


def _wait_for_removal(sandbox: DockerSandbox) -> None:
    tick = threading.Event()
    while sandbox.is_running():
        tick.wait(UP_CHECK_S)


def ls() -> None:
    """List deskhand's containers, with their owners."""
    from rich.table import Table

    from sandbox.manage import list_sandboxes

    found = _or_exit(lambda: list_sandboxes(_client_or_exit()))
    if not found:
        console.print("no deskhand containers")
        return
    table = Table("id", "session", "status", "owner", "age", "network", "viewer")
    for item in found:
        table.add_row(*_row(item))
    Console().print(table)


def _row(item: SandboxContainer) -> tuple[str, ...]:
    owner = f"{item.owner_pid}" + ("" if item.owner_alive else " (dead)")
    age = f"{time.time() - item.created:.0f}s" if item.created else "?"
    return (item.short_id, item.session, item.status, owner, age,
            "yes" if item.network else "no", "yes" if item.viewer else "no")


def down_command(
    key: Annotated[str | None, typer.Argument(help="Container id prefix, name or session.")]
    = None,
    everything: Annotated[bool, typer.Option("--all", help="Remove every deskhand container.")]
    = False,
) -> None:
    """Stop and remove one deskhand container, or all of them."""
    if not key and not everything:
        console.print("name a container (see `deskhand sandbox ls`) or pass --all")
        raise typer.Exit(2)
    from sandbox.manage import down

    removed = _or_exit(lambda: down(_client_or_exit(), key, everything=everything))
    if key and not removed:
        console.print(f"no deskhand container matches {key!r}")
        raise typer.Exit(1)
    console.print(f"removed {len(removed)} container(s)")


def prune() -> None:
    """Remove containers whose owning process died, and stopped ones."""
    from sandbox.manage import reap_strays

    removed = _or_exit(lambda: reap_strays(_client_or_exit()))
    for item in removed:
        console.print(f"removed {item.short_id} (session {item.session}, owner {item.owner_pid})")
    console.print(f"removed {len(removed)} stray container(s)")


def _client_or_exit() -> docker.DockerClient:
    return _or_exit(docker_client)


def _or_exit(work: Callable[[], T]) -> T:
    try:
        return work()
    except SandboxError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    """Mount the ``sandbox`` command group on the main deskhand app."""
    group = typer.Typer(help="The Docker desktop sandbox: build, watch, list, clean up.",
                        no_args_is_help=True)
    group.command()(build)
    group.command()(up)
    group.command()(ls)
    group.command("down")(down_command)
    group.command()(prune)
    app.add_typer(group, name="sandbox")
