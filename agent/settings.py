"""deskhand's settings: built once at the edge (the CLI), passed down.

Layers, lowest first: defaults, ``DESKHAND_*`` environment variables,
command-line flags (applied by the CLI with :meth:`Settings.with_overrides`).
Provider API keys are read here and nowhere else; they travel as
:class:`~pydantic.SecretStr` so that they never print by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable, with its default."""

    model_config = SettingsConfigDict(env_prefix="DESKHAND_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".deskhand")
    db: Path | None = None
    policy: str = "default"
    sandbox: str = "auto"
    """``auto`` or a name in :data:`agent.registry.SANDBOXES`."""
    screen: str = "1280x800"
    network: bool = False
    allow_hosts: tuple[str, ...] = ()
    """Per-run allow entries for the egress proxy (``--allow-host``; a suite case sets them
    with :meth:`with_overrides`); see :mod:`policies.network`."""
    approval_timeout_s: float = 120.0
    max_steps: int = 200
    action_deadline_s: float = 30.0

    planner: str = "script"
    """A name in :data:`agent.registry.PLANNERS`."""
    model: str = ""
    base_url: str | None = None
    max_cost_usd: float | None = None
    perception: bool = True
    secret: tuple[str, ...] = ()
    """``NAME=ENV_VAR`` or ``NAME=file:PATH`` per secret placeholder (names, never values)."""
    parser: str = "ocr"
    """The screen parser: ``ocr``, ``a11y``, ``vlm`` or ``auto`` (agent/perception/parsers.py)."""
    vlm_base_url: str = "http://127.0.0.1:11434/v1"
    """The OpenAI-compatible server of ``--parser vlm`` (default: a local Ollama)."""
    vlm_model: str = ""
    elements: str = "off"
    """What model planners are told of the screen's elements beside each screenshot:
    ``off``, ``text`` (a numbered list) or ``marks`` (the list, and its numbers drawn on
    the screenshot); see agent/planners/element_list.py."""
    elements_wait_s: float = 1.0
    """How long a step waits for the frame's elements (the click's target, the list)."""

    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "DESKHAND_ANTHROPIC_API_KEY"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "DESKHAND_OPENAI_API_KEY")
    )

    @property
    def db_path(self) -> Path:
        return self.db if self.db is not None else self.home / "audit.db"

    def secrets(self) -> list[str]:
        """Every secret value the audit log must never store."""
        keys = (self.anthropic_api_key, self.openai_api_key)
        return [k.get_secret_value() for k in keys if k is not None and k.get_secret_value()]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        given = {k: v for k, v in changes.items() if v is not None}
        return self.model_copy(update=given)
