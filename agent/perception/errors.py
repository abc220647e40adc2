"""Errors raised by perception: screen parsing, intent triage, text waits.

    PerceptionError
    ├── ModelUnavailable      a model package or its shipped files are missing
    ├── FrameDecodeError      a frame's PNG bytes could not be decoded
    ├── OcrFailed             the OCR runtime (onnxruntime) failed on a frame
    ├── TextNotFound          wait_for_text ran out of time
    └── TriageFailed          a triager could not classify a task
                              (SDK error, malformed answer, unknown category)

onnxruntime, Pillow, safetensors/tokenizers and openai errors are translated
into these where they enter: in ``ocr.py``, ``embeddings.py`` and
``triage.py``.
"""

from __future__ import annotations


class PerceptionError(Exception):
    """Base class of every perception failure."""


class ModelUnavailable(PerceptionError):
    """A local model cannot be loaded; the message names the package to install."""


class FrameDecodeError(PerceptionError):
    """The frame's image bytes are not a readable image."""


class OcrFailed(PerceptionError):
    """The OCR model raised while reading a frame."""


class TextNotFound(PerceptionError):
    """The text did not appear on screen before the deadline."""

    def __init__(self, query: str, timeout_s: float) -> None:
        super().__init__(f"{query!r} did not appear on screen within {timeout_s:g} s")
        self.query = query
        self.timeout_s = timeout_s


class TriageFailed(PerceptionError):
    """A triager could not give a verdict for the task."""
