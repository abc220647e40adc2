"""The typed arguments of suite steps and checks (one pydantic model per kind).

A step in a suite file is a one-key mapping, ``{assert_file: {path: ..., contains: ...}}``;
the key picks the model here, the value is validated by it.  A plain string
is shorthand for the kind's main field (``assert_text: Saved``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.perception.elements import ElementQuery

DEFAULT_WAIT_S = 10.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextSpec(_Spec):
    """``assert_text``, ``wait_for_text``, ``click_text`` and the ``text`` check."""

    text: str = Field(min_length=1)
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)
    exact: bool = False
    button: Literal["left", "right", "middle"] = "left"
    count: int = Field(1, ge=1, le=3)


class WindowSpec(_Spec):
    """A window whose title matches a regular expression (searched, not anchored)."""

    title: str = Field(min_length=1)
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)

    @model_validator(mode="after")
    def _compiles(self) -> WindowSpec:
        import re

        try:
            re.compile(self.title)
        except re.error as exc:
            raise ValueError(f"title is not a regular expression: {exc}") from None
        return self


class FileSpec(_Spec):
    """A file in the sandbox: it exists, contains, equals, matches or hashes to something."""

    path: str = Field(min_length=1)
    contains: str | None = None
    equals: str | None = None
    regex: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    exists: bool = True
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)

    @model_validator(mode="after")
    def _consistent(self) -> FileSpec:
        wanted = [self.contains, self.equals, self.regex, self.sha256]
        if not self.exists and any(w is not None for w in wanted):
            raise ValueError("exists: false cannot be combined with contains/equals/regex/sha256")
        return self


class CmdSpec(_Spec):
    """A shell command run in the sandbox as the desktop user."""

    run: str = Field(min_length=1)
    exit: int = 0
    stdout: str | None = None  # a regular expression searched in the output
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)


class ImageSpec(_Spec):
    """A region of the screen compared with a reference picture (mean pixel difference)."""

    reference: Path
    region: tuple[int, int, int, int] | None = None
    tolerance: float = Field(0.02, ge=0, le=1)
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)

    @model_validator(mode="after")
    def _ordered(self) -> ImageSpec:
        if self.region is not None:
            x0, y0, x1, y1 = self.region
            if not (0 <= x0 < x1 and 0 <= y0 < y1):
                raise ValueError("region is [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        return self


class ElementSpec(_Spec):
    """An element by role and name (exact, or ``name_re`` searched), optionally in a state
    (``checked``, ``not checked``...): ``click: {role, name}``, ``assert_element``,
    ``wait_for_element`` and the ``element`` check (see agent/perception/elements.py)."""

    role: str | None = Field(None, min_length=1)
    name: str | None = None
    name_re: str | None = Field(None, min_length=1)
    state: str | None = Field(None, min_length=1)
    timeout: float = Field(DEFAULT_WAIT_S, gt=0, le=600)
    button: Literal["left", "right", "middle"] = "left"
    count: int = Field(1, ge=1, le=3)

    @model_validator(mode="after")
    def _a_valid_query(self) -> ElementSpec:
        if self.role is None and self.name is None and self.name_re is None:
            raise ValueError("an element needs a role, a name or a name_re")
        self.query()  # name and name_re together, or a name_re that does not compile
        return self

    def query(self) -> ElementQuery:
        return ElementQuery(role=self.role, name=self.name, name_re=self.name_re,
                            state=self.state)


class ExecSpec(_Spec):
    run: str = Field(min_length=1)
    timeout: float = Field(30.0, gt=0, le=600)


class WriteFileSpec(_Spec):
    path: str = Field(min_length=1)
    content: str = ""


class LaunchSpec(_Spec):
    run: str = Field(min_length=1)


class WaitSpec(_Spec):
    seconds: float = Field(ge=0, le=600)


Spec = (TextSpec | WindowSpec | FileSpec | CmdSpec | ImageSpec | ElementSpec | ExecSpec
        | WriteFileSpec | LaunchSpec | WaitSpec)

# What a bare string stands for, per kind.
MAIN_FIELD: dict[type[_Spec], str] = {
    TextSpec: "text", WindowSpec: "title", CmdSpec: "run", ExecSpec: "run",
    LaunchSpec: "run", WaitSpec: "seconds", FileSpec: "path", ImageSpec: "reference",
    ElementSpec: "name",
}

# Checks poll the sandbox; these kinds work in steps (assert_*), in expect, or both.
ASSERT_KINDS: dict[str, type[_Spec]] = {
    "assert_text": TextSpec, "assert_window": WindowSpec, "assert_file": FileSpec,
    "assert_cmd": CmdSpec, "assert_image": ImageSpec, "assert_element": ElementSpec,
}
TEXT_STEP_KINDS: dict[str, type[_Spec]] = {"click_text": TextSpec, "wait_for_text": TextSpec,
                                           "wait_for_window": WindowSpec,
                                           "wait_for_element": ElementSpec}
# ``click`` with a role or a name is this step; with coordinates it stays an action.
CLICK_ELEMENT = "click_element"
EXPECT_KINDS: dict[str, type[_Spec]] = {
    "text": TextSpec, "window": WindowSpec, "file": FileSpec, "cmd": CmdSpec, "image": ImageSpec,
    "element": ElementSpec,
}
ARRANGE_KINDS: dict[str, type[_Spec]] = {
    "exec": ExecSpec, "file": WriteFileSpec, "launch": LaunchSpec,
    "wait_for_window": WindowSpec, "wait": WaitSpec,
}


def spec_input(model: type[_Spec], value: object) -> object:
    """The mapping to validate: a bare scalar fills the kind's main field."""
    if isinstance(value, dict):
        return value
    return {MAIN_FIELD[model]: value}
