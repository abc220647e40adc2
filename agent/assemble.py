"""Build the run's parts from settings: the one place clients are constructed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anthropic
import openai

from agent.errors import ConfigError
from agent.loop import Perceiver, PolicyEngine
from agent.planners.anthropic import AnthropicPlanner
from agent.planners.base import Planner
from agent.planners.openai import OpenAIChatPlanner, OpenAIComputerUsePlanner
from agent.planners.script import ScriptPlanner, TextLocator, load_script
from agent.settings import Settings
from policies.decision import Triage, TypedFromScreen
from sandbox.base import Frame, Sandbox, Size

if TYPE_CHECKING:
    from agent.perception.perceiver import Perception

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


def make_script_planner(script: Path | None,
                        locator: TextLocator | None = None) -> ScriptPlanner:
    if script is None:
        raise ConfigError("--planner script needs --script FILE")
    return ScriptPlanner(load_script(script), locator=locator)


DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "qwen2.5-vl-7b-instruct",
    "openai-cua": "computer-use-preview",
}


def make_planner(settings: Settings, script: Path | None,
                 locator: TextLocator | None = None) -> Planner:
    """The planner the settings name, with its SDK client built here and nowhere else."""
    size = screen_size(settings)
    model = settings.model or DEFAULT_MODELS.get(settings.planner, "")
    if settings.planner == "script":
        return make_script_planner(script, locator)
    if settings.planner == "anthropic":
        return AnthropicPlanner(_anthropic_client(settings), model=model, sandbox_size=size)
    if settings.planner == "openai":
        return OpenAIChatPlanner(_openai_client(settings), model=model, sandbox_size=size)
    if settings.planner == "openai-cua":
        return OpenAIComputerUsePlanner(_openai_client(settings), model=model, sandbox_size=size)
    raise ConfigError(f"unknown planner {settings.planner!r} "
                      "(choose script, anthropic, openai or openai-cua)")


def _anthropic_client(settings: Settings) -> anthropic.Anthropic:
    key = settings.anthropic_api_key
    if key is None:
        raise ConfigError("--planner anthropic needs ANTHROPIC_API_KEY in the environment")
    return anthropic.Anthropic(api_key=key.get_secret_value(), base_url=settings.base_url)


def _openai_client(settings: Settings) -> openai.OpenAI:
    key = settings.openai_api_key
    if key is None and settings.base_url is None:
        raise ConfigError("--planner openai needs OPENAI_API_KEY, or --base-url of a local "
                          "OpenAI-compatible server (vLLM, Ollama, llama.cpp)")
    # Local servers usually ignore the key, but the SDK insists on one.
    secret = key.get_secret_value() if key is not None else "not-needed"
    return openai.OpenAI(api_key=secret, base_url=settings.base_url)


def session_extra(box: Sandbox, settings: Settings) -> dict[str, object]:
    """What the session record says about the sandbox beyond its kind and size."""
    return {
        "image": getattr(box, "image", ""),
        "network": bool(getattr(box, "network", False)),
        "policy_source": settings.policy,
    }


def make_perception(settings: Settings) -> LazyPerception | None:
    """The offline screen parser and triager, unless turned off (``--no-perception``).

    The models load when first used, so building this costs nothing.
    """
    return LazyPerception() if settings.perception else None


class TriageOnly:
    """Perception for scripted runs: triage the task, but read no screen for injection.

    A script does not take instructions from the screen, so there is nothing
    for injected text to steer; reading every frame would only slow it down.
    """

    def __init__(self, perception: Perceiver) -> None:
        self.perception = perception

    def triage(self, task: str) -> Triage | None:
        return self.perception.triage(task)

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        return 0.0, ""

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return None


def loop_perceiver(planner: Planner, perception: Perceiver | None) -> Perceiver | None:
    """What the loop perceives with: everything for model planners, triage for scripts."""
    if perception is None:
        return None
    return TriageOnly(perception) if isinstance(planner, ScriptPlanner) else perception


class LazyPerception:
    """Loads the perception models on first use, in whichever thread needs them.

    Loading takes about a second; the TUI prepares runs on its UI thread and
    must not freeze there.
    """

    def __init__(self) -> None:
        self._loaded: Perception | None = None

    def _get(self) -> Perception:
        if self._loaded is None:
            from agent.perception.perceiver import Perception

            self._loaded = Perception.load()
        return self._loaded

    def triage(self, task: str) -> Triage | None:
        return self._get().triage(task)

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        return self._get().injection_risk(frame, task)

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return self._get().typed_from_screen(text, frame, task)

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None:
        return self._get().locate(frame, text)
