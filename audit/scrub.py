"""Keeping secrets out of the file: redaction and masking of secret typed text.

Two kinds of secret never reach the database:

* strings given to :class:`Scrubber` (API keys, and the text of secret
  typing steps once seen) are replaced by ``[redacted]`` in every stored
  string, including dictionary keys;
* the ``text`` of a typing action the policy marked secret is stored as
  ``•••• (N chars)``.

Hashes and ids are left alone: they are not free text, and a short secret
could otherwise corrupt a frame reference by chance.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.actions import Action, TypeText

REDACTED = "[redacted]"
# Secret typed text shorter than this is masked in its own step but not hunted
# for elsewhere: too many innocent strings would match.
MIN_SCRUB_LENGTH = 4
_STRUCTURAL_KEYS = frozenset({
    "session_id", "step_id", "frame_sha256", "frame_before_sha256", "frame_after_sha256",
    "policy_sha256", "base_sha256", "stored_sha256", "pixels_sha256",
})


def mask(text: str) -> str:
    """What is stored instead of secret typed text."""
    return f"•••• ({len(text)} chars)"


def mask_action(action: Action) -> Action:
    """A copy of ``action`` with any typed text masked."""
    if isinstance(action, TypeText):
        return action.model_copy(update={"text": mask(action.text)})
    return action


class Scrubber:
    """Replaces known secret strings wherever they appear in JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret, min_length=1)

    def add(self, secret: str, *, min_length: int = MIN_SCRUB_LENGTH) -> None:
        """Scrub ``secret`` from everything stored from now on."""
        if len(secret) < min_length or secret in self._secrets:
            return
        self._secrets.add(secret)
        longest_first = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in longest_first))

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(REDACTED, value)

    def body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A record body with secrets scrubbed, structural fields untouched."""
        return {key: value if key in _STRUCTURAL_KEYS else self.value(value)
                for key, value in body.items()}

    def value(self, value: Any) -> Any:
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: models dumped, bytes summarised, unknown objects as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return _jsonable_object(value)


def _jsonable_object(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return repr(value)
