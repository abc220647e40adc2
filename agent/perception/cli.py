"""``deskhand perceive``: triage a task, read a screenshot, check it for injection.

Mounted by the main app through :func:`register`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from agent.perception.errors import PerceptionError

if TYPE_CHECKING:
    from agent.perception.elements import Element, ElementSource
    from agent.perception.parsers import ParserChoice
    from sandbox.base import Frame

# The OCR model, the triage embeddings and their numpy/onnxruntime stacks load
# inside the commands: registering them must cost `deskhand --help` nothing.

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_NOT_FOUND = 3

perceive_app = typer.Typer(help="Intent triage, screen text and injection checks, offline.",
                           no_args_is_help=True)

ImageArgument = Annotated[Path, typer.Argument(help="A screenshot (PNG or any image).",
                                               exists=True, dir_okay=False)]


def register(app: typer.Typer) -> None:
    """Add the ``perceive`` command group to ``app``."""
    app.add_typer(perceive_app, name="perceive")


@perceive_app.command("triage")
def triage(task: Annotated[str, typer.Argument(help="The task, in words.")]) -> None:
    """Print the task's category, risk and confidence as JSON."""
    from agent.perception.triage import CentroidTriager

    verdict = _or_exit(lambda: CentroidTriager.load().classify(task))
    typer.echo(json.dumps({"category": verdict.category, "risk": verdict.risk,
                           "confidence": verdict.confidence}))


@perceive_app.command("read")
def read(image: ImageArgument,
         find: Annotated[str | None, typer.Option(help="Print only where this text is.")] = None,
         ) -> None:
    """Print the screenshot's text, one phrase a line (or the box of --find)."""
    from agent.perception.ocr import OcrScreenParser, RapidOcrReader
    from agent.perception.screen import find_text, read_lines

    elements = _or_exit(lambda: OcrScreenParser(RapidOcrReader.load()).parse(load_frame(image)))
    if find is None:
        for line in read_lines(elements):
            typer.echo(line)
        return
    found = find_text(elements, find)
    if found is None:
        typer.echo(f"{find!r} is not on the screenshot", err=True)
        raise typer.Exit(EXIT_NOT_FOUND)
    typer.echo(json.dumps({"text": found.text, "box": list(found.box),
                           "center": list(found.center), "confidence": found.confidence}))


@perceive_app.command("injection")
def injection(image: ImageArgument,
              task: Annotated[str, typer.Option(help="The task the agent works on.")] = "",
              ) -> None:
    """Print the learned detector's and the patterns' opinions, with the evidence box, as JSON.

    The detector's risk blends two looks at its evidence span: "spelling"
    (character n-grams) and "meaning" (a multilingual sentence encoder).
    """
    from agent.perception.injection import InjectionGuard
    from agent.perception.injection_detector import LearnedDetector
    from agent.perception.ocr import OcrScreenParser, RapidOcrReader
    from agent.perception.perceiver import InjectionVerdict

    elements = _or_exit(lambda: OcrScreenParser(RapidOcrReader.load()).parse(load_frame(image)))
    detector = _or_exit(lambda: LearnedDetector().assess(elements, task))
    verdict = InjectionVerdict(detector, InjectionGuard().assess(elements, task))
    evidence = detector.evidence
    typer.echo(json.dumps({
        "risk": verdict.risk, "flagged": verdict.risk >= 0.5, "reason": verdict.reason,
        "detector": {"risk": detector.risk, "flagged": detector.flagged,
                     "spelling": detector.spelling, "meaning": detector.meaning,
                     "evidence": None if evidence is None else
                     {"text": evidence.text, "box": list(evidence.box or ())}},
        "patterns": {"risk": verdict.patterns.risk, "flagged": verdict.patterns.flagged,
                     "reason": verdict.patterns.reason,
                     "evidence": [{"text": e.text, "box": list(e.box)}
                                  for e in verdict.patterns.evidence]},
    }, ensure_ascii=False))


EXIT_USAGE = 2


@perceive_app.command("elements")
def elements(
    frame_or_live: Annotated[str, typer.Argument(
        metavar="FRAME_OR_LIVE", help="A screenshot file, or ``live``: the running Docker "
        "desktop (`deskhand sandbox up`), its screen and its accessibility tree.")],
    parser: Annotated[str, typer.Option(
        help="ocr, a11y (live only: the accessibility tree), vlm or auto (live: the tree, "
        "then OCR; a screenshot: OCR).")] = "ocr",
    sandbox: Annotated[str | None, typer.Option(
        help="With live: the desktop's container id, name or session (`deskhand sandbox "
        "ls`); default: the one that runs.")] = None,
    vlm_model: Annotated[str, typer.Option(help="Model for --parser vlm.")] = "",
    vlm_base_url: Annotated[str, typer.Option(help="OpenAI-compatible server for --parser "
                                              "vlm.")] = "http://127.0.0.1:11434/v1",
) -> None:
    """Print the elements a parser sees, one JSON object a line (role, name, states, value,
    box, source)."""
    from agent.perception.parsers import ParserChoice, UnknownParser

    choice = ParserChoice(kind=parser, vlm_base_url=vlm_base_url, vlm_model=vlm_model)
    try:
        choice.check()
    except UnknownParser as exc:
        _usage(str(exc))
    live = frame_or_live == "live"
    if not live and parser == "a11y":
        _usage("perceive elements: a screenshot has no accessibility tree; use `live` for "
               "--parser a11y")
    if live:
        found = _live_elements(choice, sandbox)
    else:
        path = Path(frame_or_live)
        if not path.is_file():
            _usage(f"{path}: no such screenshot (or give `live`)")
        frame = load_frame(path)
        source = _frame_source(choice, tree=None)
        found = _or_exit(lambda: source.elements(frame))
    for element in found:
        typer.echo(json.dumps({"role": element.role, "name": element.name,
                               "states": sorted(element.states), "value": element.value,
                               "box": list(element.box), "source": element.source},
                              ensure_ascii=False))


def _live_elements(choice: ParserChoice, key: str | None) -> list[Element]:
    """What ``choice`` sees on the running desktop now."""
    from agent.perception.elements import AccessibilityTree
    from sandbox.cli import docker_client
    from sandbox.docker_attach import AttachedDesktop
    from sandbox.errors import SandboxError

    try:
        with AttachedDesktop(docker_client(), key) as desktop:
            frame = desktop.screenshot()
            tree = AccessibilityTree(desktop) if choice.kind in {"a11y", "auto"} else None
            source = _frame_source(choice, tree=tree)
            return _or_exit(lambda: source.elements(frame))
    except SandboxError as exc:
        typer.echo(f"perceive elements live: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _frame_source(choice: ParserChoice, *, tree: ElementSource | None) -> ElementSource:
    """The element source ``choice`` names: the tree alone (a11y), the tree then OCR (auto),
    OCR or the VLM; ``tree`` is None for a screenshot file."""
    from agent.perception.elements import CombinedSource, ElementSource, TextAsElements
    from agent.perception.ocr import OcrScreenParser, RapidOcrReader
    from agent.perception.parsers import build_parser

    if choice.kind == "a11y" and tree is not None:
        return tree
    chosen = build_parser(choice, lambda: OcrScreenParser(RapidOcrReader.load()),
                          note=lambda text: typer.echo(text, err=True))
    source = chosen if isinstance(chosen, ElementSource) else TextAsElements(chosen)
    if choice.kind == "auto" and tree is not None:
        return CombinedSource(tree, source, note=lambda text: typer.echo(text, err=True))
    return source


def _usage(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE)


def load_frame(path: Path) -> Frame:
    """A frame from an image file (converted to PNG when it is another format)."""
    from PIL import Image, UnidentifiedImageError

    from sandbox.base import Frame

    try:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG", compress_level=1)
            return Frame.from_png(buffer.getvalue(), image.width, image.height)
    except (UnidentifiedImageError, OSError) as exc:
        typer.echo(f"{path}: not a readable image ({exc})", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _or_exit(work: Callable[[], T]) -> T:
    try:
        return work()
    except PerceptionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_FAILED) from None
