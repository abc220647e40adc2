"""What can plan and where it can run: the planner and sandbox registries.

Every front end (``deskhand run``, the TUI's drop-downs, the suite runner,
the MCP server) offers exactly the kinds registered here, with the help text
written here.  Adding a planner or a sandbox is one :func:`register_planner`
or :func:`register_sandbox` call.  Factories import their SDKs when called,
so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from agent.errors import ConfigError

if TYPE_CHECKING:  # settings (pydantic-settings) load with a run, not with --help
    import socket

    import openai

    from agent.planners.base import Planner
    from agent.planners.element_list import ElementsMode
    from agent.planners.script import TextLocator
    from agent.settings import Settings
    from sandbox.base import Sandbox, Size

    EgressHandler = Callable[[socket.socket], None]


@dataclass(frozen=True, slots=True)
class PlannerInputs:
    """What a planner factory is given."""

    settings: Settings
    size: Size
    script: Path | None = None
    locator: TextLocator | None = None


@dataclass(frozen=True, slots=True)
class SandboxInputs:
    """What a sandbox factory is given."""

    settings: Settings
    size: Size
    watch: bool = False
    engine_url: str | None = None
    docker_client: object | None = None
    """A Docker engine's client to use instead of one made from ``engine_url``."""
    label: str = ""
    """What the sandbox is labelled with (a suite case, say); random when empty."""
    egress: EgressHandler | None = None
    """Serves the desktop's proxy connections (allowlist mode; docker only)."""


@dataclass(frozen=True, slots=True)
class PlannerKind:
    """One planner: its name on the command line, help, the settings it needs."""

    name: str
    help: str
    build: Callable[[PlannerInputs], Planner]
    default_model: str = ""
    needs: tuple[str, ...] = ()
    follows_screen: bool = True
    """Whether it takes instructions from what it sees (model planners do, scripts do not)."""
    settle_profile: str = "model"
    """How the sandbox waits for the screen after each action (``sandbox/executor/settle.py``):
    ``model`` for planners whose seconds per turn hide a longer wait for late drawing,
    ``fast`` for scripts, whose checks wait for what they expect anyway."""


@dataclass(frozen=True, slots=True)
class SandboxKind:
    """One sandbox backend."""

    name: str
    help: str
    build: Callable[[SandboxInputs], Sandbox]


K = TypeVar("K", PlannerKind, SandboxKind)


class Registry(Generic[K]):
    """Kinds by name, in registration order."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._kinds: dict[str, K] = {}

    def add(self, kind: K) -> K:
        self._kinds[kind.name] = kind
        return kind

    def get(self, name: str) -> K:
        try:
            return self._kinds[name]
        except KeyError:
            raise ConfigError(f"unknown {self.what} {name!r} (choose {self.choices()})") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def choices(self) -> str:
        names = self.names()
        return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]

    def help(self) -> str:
        """One line per kind, for ``--help``."""
        return "; ".join(f"{kind.name}: {kind.help}" for kind in self)

    def __iter__(self) -> Iterator[K]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds


PLANNERS: Registry[PlannerKind] = Registry("planner")
SANDBOXES: Registry[SandboxKind] = Registry("sandbox")


def register_planner(kind: PlannerKind) -> PlannerKind:
    return PLANNERS.add(kind)


def register_sandbox(kind: SandboxKind) -> SandboxKind:
    return SANDBOXES.add(kind)


# -- the shipped planners ----------------------------------------------------


def _script(inputs: PlannerInputs) -> Planner:
    from agent.planners.script import ScriptPlanner, load_script

    if inputs.script is None:
        raise ConfigError("--planner script needs --script FILE")
    return ScriptPlanner(load_script(inputs.script), locator=inputs.locator)


def _anthropic(inputs: PlannerInputs) -> Planner:
    import anthropic

    from agent.planners.anthropic import AnthropicPlanner

    settings = inputs.settings
    key = settings.anthropic_api_key
    if key is None:
        raise ConfigError("--planner anthropic needs ANTHROPIC_API_KEY in the environment")
    client = anthropic.Anthropic(api_key=key.get_secret_value(), base_url=settings.base_url)
    return AnthropicPlanner(client, model=_model(settings), sandbox_size=inputs.size,
                            elements=elements_mode(settings))


def _openai_client(settings: Settings) -> openai.OpenAI:
    import openai

    key = settings.openai_api_key
    if key is None and settings.base_url is None:
        raise ConfigError("--planner openai needs OPENAI_API_KEY, or --base-url of a local "
                          "OpenAI-compatible server (vLLM, Ollama, llama.cpp)")
    # Local servers usually ignore the key, but the SDK insists on one.
    secret = key.get_secret_value() if key is not None else "not-needed"
    return openai.OpenAI(api_key=secret, base_url=settings.base_url)


def _openai_chat(inputs: PlannerInputs) -> Planner:
    from agent.planners.openai import OpenAIChatPlanner

    client = _openai_client(inputs.settings)
    return OpenAIChatPlanner(client, model=_model(inputs.settings), sandbox_size=inputs.size,
                             elements=elements_mode(inputs.settings))


def _openai_cua(inputs: PlannerInputs) -> Planner:
    from agent.planners.openai import OpenAIComputerUsePlanner

    client = _openai_client(inputs.settings)
    return OpenAIComputerUsePlanner(client, model=_model(inputs.settings),
                                    sandbox_size=inputs.size,
                                    elements=elements_mode(inputs.settings))


def elements_mode(settings: Settings) -> ElementsMode:
    """The settings' ``--elements``, checked; raises :class:`ConfigError` when unknown."""
    from agent.planners.element_list import check_mode

    try:
        return check_mode(settings.elements)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _model(settings: Settings) -> str:
    return settings.model or PLANNERS.get(settings.planner).default_model


register_planner(PlannerKind(
    "script", "steps from --script FILE", _script, needs=("script",), follows_screen=False,
    settle_profile="fast"))
register_planner(PlannerKind(
    "anthropic", "Claude computer use", _anthropic, default_model="claude-sonnet-4-6",
    needs=("ANTHROPIC_API_KEY",)))
register_planner(PlannerKind(
    "openai", "an OpenAI-compatible vision model (vLLM, Ollama, llama.cpp)", _openai_chat,
    default_model="qwen2.5-vl-7b-instruct", needs=("--base-url or OPENAI_API_KEY",)))
register_planner(PlannerKind(
    "openai-cua", "OpenAI computer use on the Responses API", _openai_cua,
    default_model="computer-use-preview", needs=("OPENAI_API_KEY",)))


# -- the shipped sandboxes ---------------------------------------------------


def _fake(inputs: SandboxInputs) -> Sandbox:
    from sandbox.fake import FakeSandbox

    return FakeSandbox(size=inputs.size)


def _local(inputs: SandboxInputs) -> Sandbox:
    from sandbox.local import LocalSandbox

    if inputs.settings.network:
        raise ConfigError("--network is only for the docker sandbox; the local one has none")
    if inputs.egress is not None:
        raise ConfigError("network allowlist (--allow-host, policy network.mode) needs the "
                          "docker sandbox; the local one has no network")
    return LocalSandbox(size=inputs.size)


def _docker(inputs: SandboxInputs) -> Sandbox:
    import docker

    from sandbox.docker import DockerSandbox, DockerSandboxConfig

    client = inputs.docker_client or (
        docker.DockerClient(base_url=inputs.engine_url) if inputs.engine_url
        else docker.from_env())
    config = DockerSandboxConfig(size=inputs.size, network=inputs.settings.network,
                                 vnc=inputs.watch, session=inputs.label, egress=inputs.egress)
    return DockerSandbox(client, config)


register_sandbox(SandboxKind(
    "docker", "an ephemeral hardened container with Xvfb and VNC", _docker))
register_sandbox(SandboxKind(
    "local", "Xvfb and a window manager in bubblewrap, no network", _local))
register_sandbox(SandboxKind("fake", "an in-memory desktop for trying policies", _fake))
