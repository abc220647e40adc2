"""Build the run's parts from settings: the one place clients are constructed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.errors import ConfigError
from agent.loop import PolicyEngine
from agent.planners.base import Planner
from agent.planners.script import ScriptPlanner, load_script
from agent.settings import Settings
from sandbox.base import Sandbox, Size

Note = Callable[[str], None]


def screen_size(settings: Settings) -> Size:
    try:
        return Size.parse(settings.screen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def load_policy_named(name_or_path: str) -> PolicyEngine:
    """A shipped profile by name, or a policy file by path."""
    from policies import engine

    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return engine.load_policy(path)
    return engine.load_profile(name_or_path)


def choose_sandbox_kind(settings: Settings, note: Note) -> str:
    """Resolve ``auto``: Docker when an engine answers and the image is built, else local."""
    if settings.sandbox != "auto":
        return settings.sandbox
    from sandbox.manage import docker_ready

    ready, why = docker_ready()
    if ready:
        note("sandbox: docker (engine answers, image built)")
        return "docker"
    note(f"sandbox: local Xvfb ({why})")
    return "local"


def make_sandbox(kind: str, settings: Settings, *, watch: bool = False) -> Sandbox:
    size = screen_size(settings)
    if kind == "fake":
        from sandbox.fake import FakeSandbox

        return FakeSandbox(size=size)
    if kind == "local":
        if settings.network:
            raise ConfigError("--network is only for the docker sandbox; the local one has none")
        from sandbox.local import LocalSandbox

        return LocalSandbox(size=size)
    if kind == "docker":
        import docker

        from sandbox.docker import DockerSandbox

        return DockerSandbox(docker.from_env(), size=size, network=settings.network,
                             vnc=watch)
    raise ConfigError(f"unknown sandbox kind {kind!r} (choose local, docker or fake)")


def make_script_planner(script: Path | None) -> ScriptPlanner:
    if script is None:
        raise ConfigError("--planner script needs --script FILE")
    return ScriptPlanner(load_script(script))


def make_planner(settings: Settings, script: Path | None) -> Planner:
    if settings.planner == "script":
        return make_script_planner(script)
    raise ConfigError(f"planner {settings.planner!r} is not available yet")


def session_extra(box: Sandbox, settings: Settings) -> dict[str, object]:
    """What the session record says about the sandbox beyond its kind and size."""
    return {
        "image": getattr(box, "image", ""),
        "network": bool(getattr(box, "network", False)),
        "policy_source": settings.policy,
    }
