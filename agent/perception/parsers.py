"""Which screen parser a run reads with (``--parser ocr|a11y|vlm|auto``).

``ocr``
    offline OCR of the frame's words (the default).
``vlm``
    a local vision-language model behind an OpenAI-compatible server
    (``vlm_base_url``, ``vlm_model``); OCR reads whenever it fails.
``a11y``, ``auto``
    elements from the sandbox's accessibility tree where the app exposes one;
    the screen's words (for ``click_text``, the injection guard) still come
    from OCR, which also stands in for apps with no tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.perception.screen import ScreenParser

PARSER_KINDS = ("ocr", "a11y", "vlm", "auto")


class UnknownParser(ValueError):
    """A parser kind not in :data:`PARSER_KINDS`, or a VLM with no model."""


@dataclass(frozen=True, slots=True)
class ParserChoice:
    kind: str = "ocr"
    vlm_base_url: str = "http://127.0.0.1:11434/v1"
    vlm_model: str = ""
    vlm_api_key: str = "local"

    @property
    def reads_tree(self) -> bool:
        """Whether elements come from the sandbox's accessibility tree first (a11y, auto)."""
        return self.kind in {"a11y", "auto"}

    def check(self) -> None:
        if self.kind not in PARSER_KINDS:
            raise UnknownParser(f"--parser {self.kind!r}: choose one of "
                                f"{', '.join(PARSER_KINDS)}")
        if self.kind == "vlm" and not self.vlm_model:
            raise UnknownParser("--parser vlm needs a model: set --vlm-model "
                                "(or DESKHAND_VLM_MODEL)")


def build_parser(choice: ParserChoice, ocr: Callable[[], ScreenParser], *,
                 note: Callable[[str], None] = lambda _text: None) -> ScreenParser:
    """The parser ``choice`` names; ``ocr`` builds the OCR parser (loaded lazily)."""
    choice.check()
    if choice.kind != "vlm":
        return ocr()
    import openai

    from agent.perception.vlm import FallbackParser, VlmScreenParser

    client = openai.OpenAI(base_url=choice.vlm_base_url, api_key=choice.vlm_api_key)
    return FallbackParser(VlmScreenParser(client, choice.vlm_model), ocr(), note=note)
