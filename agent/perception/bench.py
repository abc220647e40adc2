"""Perception benchmarks: one dict per figure, printed as JSON lines.

* ``perception.screen_parse_changed_p50``: parse a 1280x800 desktop frame
  after the one before it was parsed — a terminal printed a line and the
  panel clock ticked (the common case after an action).  Target 400 ms.
* ``perception.screen_parse_full_p50``: read a whole 1280x800 frame with
  nothing to reuse (first frame of a session).  No target; shown so the
  saving is visible.
* ``perception.screen_parse_full_other_script_p50``: the same whole-frame
  read with the editor's document in Russian, its Cyrillic lines read again
  by Tesseract's script models; the baseline is the same frame read without
  them (and misread as Latin look-alikes).
* ``perception.triage_per_task_p50``: classify one task with the local
  triager.  Target 5 ms.
* ``perception.injection_detector_changed_frame_p50``: the learned
  injection detector on the words of a changed 1280x800 frame (OCR already
  done: this is the time it adds), with its second look (the sentence
  encoder) on a span it has not seen before.  Target 150 ms; the n-grams
  alone and the English patterns on the same words are the baselines.
* ``perception.injection_corpus_scoring``: score every screen of the
  injection corpus (both halves) with the detector, in seconds, and per
  screen in ms.

The desktop is drawn with Pillow (DejaVu fonts), so no X server is needed.
Run: ``python -m agent.perception.bench``.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.triage import RISK_BY_CATEGORY, CentroidTriager, load_examples
from sandbox.base import Frame

_FONTS = Path("/usr/share/fonts/truetype/dejavu")
_SIZE = (1280, 800)
_DOCUMENT = [
    "Quarterly report - draft 3",
    "Revenue grew by 12 percent in the third quarter, driven by new customers.",
    "Operating costs stayed flat; hiring resumes in January.",
    "Next steps: review the budget with finance and confirm the timeline.",
    "Risks: supplier delays, currency swings, and the office move in spring.",
    "Owner: Maria Lopez    Reviewers: Ana, Tom, Priya",
]
_TERMINAL = [
    "$ make test",
    "pytest -q tests/",
    "........................................ [ 61%]",
    "......................... [100%]",
    "65 passed in 4.21s",
    "$ git status --short",
    " M agent/perception/ocr.py",
    "?? notes.txt",
]


def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _FONTS / name
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


def desktop_frame(extra_terminal_lines: int, clock: str) -> Frame:
    """A desktop with an editor, a terminal with ``extra`` more lines, a menu and a clock."""
    image = Image.new("RGB", _SIZE, (58, 66, 78))
    draw = ImageDraw.Draw(image)
    sans, mono = _font("DejaVuSans.ttf", 15), _font("DejaVuSansMono.ttf", 14)
    draw.rectangle((0, 770, 1280, 800), fill=(30, 30, 34))
    draw.text((1180, 776), clock, fill=(230, 230, 230), font=sans)
    draw.text((12, 776), "Applications   Places   Files", fill=(230, 230, 230), font=sans)
    draw.rectangle((40, 40, 760, 500), fill=(252, 252, 252), outline=(20, 20, 20))
    draw.text((56, 50), "File   Edit   View   Insert   Format   Help", fill=(20, 20, 20), font=sans)
    for row, text in enumerate(_DOCUMENT):
        draw.text((56, 100 + 32 * row), text, fill=(20, 20, 20), font=sans)
    draw.rectangle((560, 300, 1240, 740), fill=(16, 16, 16), outline=(200, 200, 200))
    lines = _TERMINAL + [f"$ echo step {i} done" for i in range(extra_terminal_lines)]
    for row, text in enumerate(lines[-20:]):
        draw.text((572, 310 + 20 * row), text, fill=(220, 220, 220), font=mono)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return Frame.from_png(buffer.getvalue(), *_SIZE)


def _p50_ms(run: Callable[[int], object], repeats: int) -> float:
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        run(index)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def bench_screen_parse(repeats: int = 9) -> list[dict[str, Any]]:
    """p50 of a changed-frame parse and of a whole-frame read, in ms."""
    reader = RapidOcrReader.load(threads=2)
    parser = OcrScreenParser(reader)
    frames = [desktop_frame(i, f"10:{i:02d}") for i in range(repeats + 1)]
    parser.parse(frames[0])
    changed = _p50_ms(lambda i: parser.parse(frames[i + 1]), repeats)

    def read_afresh(index: int) -> None:
        reader.forget()
        parser.parse_full(frames[index % len(frames)])

    full = _p50_ms(read_afresh, max(1, repeats // 3))
    return [_figure("perception.screen_parse_changed_p50", changed, "ms", 400),
            _figure("perception.screen_parse_full_p50", full, "ms", None)]


_RUSSIAN_DOCUMENT = [
    "Квартальный отчёт — черновик 3",
    "Выручка выросла на 12 процентов в третьем квартале благодаря новым клиентам.",
    "Операционные расходы не изменились; набор сотрудников возобновится в январе.",
    "Дальше: согласовать бюджет с финансовым отделом и подтвердить сроки.",
    "Риски: задержки поставщиков, колебания курса и переезд офиса весной.",
    "Ответственный: Мария Лопес    Рецензенты: Анна, Том, Прия",
]


def russian_frame() -> Frame:
    """The benchmark desktop with its document in Russian."""
    image = Image.open(io.BytesIO(desktop_frame(0, "10:00").png)).convert("RGB")
    draw = ImageDraw.Draw(image)
    sans = _font("DejaVuSans.ttf", 15)
    draw.rectangle((41, 90, 759, 499), fill=(252, 252, 252))
    for row, text in enumerate(_RUSSIAN_DOCUMENT):
        draw.text((56, 100 + 32 * row), text, fill=(20, 20, 20), font=sans)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return Frame.from_png(buffer.getvalue(), *_SIZE)


def bench_other_scripts(repeats: int = 3) -> list[dict[str, Any]]:
    """A whole 1280x800 frame with a Russian document read with Tesseract's script
    models for its Cyrillic lines, beside the same frame read without them (the
    Latin look-alikes RapidOCR guesses)."""
    reader = RapidOcrReader.load(threads=2)
    frame = russian_frame()
    plain = reader.with_scripts(None)

    def read_afresh(with_scripts: RapidOcrReader) -> Callable[[int], object]:
        def read(_index: int) -> object:
            with_scripts.forget()
            return OcrScreenParser(with_scripts).parse_full(frame)
        return read

    read_afresh(reader)(0)  # loads the script models: a one-off
    scripts_ms = _p50_ms(read_afresh(reader), repeats)
    plain_ms = _p50_ms(read_afresh(plain), repeats)
    return [{**_figure("perception.screen_parse_full_other_script_p50", scripts_ms, "ms", None),
             "baseline": plain_ms, "baseline_name": "the same frame without the script models"}]


def bench_triage(repeats: int = 3) -> list[dict[str, Any]]:
    """p50 time to classify one task, over the evaluation tasks."""
    triager = CentroidTriager.load()
    tasks = [example.task for example in load_examples("triage_eval.jsonl")]
    per_task = _p50_ms(lambda i: triager.classify(tasks[i % len(tasks)]), repeats * len(tasks))
    return [_figure("perception.triage_per_task_p50", per_task, "ms", 5),
            *bench_triage_held_out(triager)]


def bench_triage_held_out(triager: CentroidTriager) -> list[dict[str, Any]]:
    """Accuracy and benign tasks sent to high risk, on a set nothing was tuned on."""
    held_out = load_examples("triage_heldout.jsonl")
    verdicts = [(e, triager.classify(e.task)) for e in held_out]
    benign = [v for e, v in verdicts if RISK_BY_CATEGORY[e.category] == "low"]
    accuracy = sum(v.category == e.category for e, v in verdicts) / len(held_out)
    benign_high = sum(v.risk == "high" for v in benign) / len(benign)
    return [_figure("perception.triage_held_out_accuracy", round(accuracy, 3), "ratio", 0.85),
            _figure("perception.triage_held_out_benign_to_high", round(benign_high, 3),
                    "ratio", 0.0)]


def bench_injection_detector(repeats: int = 9) -> list[dict[str, Any]]:
    """Detector time on a changed frame's words, beside the patterns; whole-corpus scoring."""
    from agent.perception.injection import InjectionGuard
    from agent.perception.injection_detector import LearnedDetector
    from agent.perception.injection_semantic import E5Encoder
    from agent.perception.injection_training import load_corpus

    parser = OcrScreenParser(RapidOcrReader.load(threads=2))
    frames = [desktop_frame(i, f"11:{i:02d}") for i in range(repeats + 1)]
    parser.parse(frames[0])
    words = [parser.parse(frame) for frame in frames[1:]]
    # No span remembered between frames: every frame pays for its second look.
    detector = LearnedDetector(encoder=E5Encoder(cache_spans=0))
    guard = InjectionGuard()
    detector.assess(words[0])  # loads the weights: a one-off, not per frame
    spelling_only = LearnedDetector(replace(detector.model, semantic=None))
    detector_ms = _p50_ms(lambda i: detector.assess(words[i]), repeats)
    ngrams_ms = _p50_ms(lambda i: spelling_only.assess(words[i]), repeats)
    patterns_ms = _p50_ms(lambda i: guard.assess(words[i], ""), repeats)
    corpus = load_corpus()
    started = time.perf_counter()
    for screen in corpus:
        detector.assess_text(screen.text)
    corpus_s = time.perf_counter() - started
    return [_figure("perception.injection_detector_changed_frame_p50", detector_ms, "ms", 150),
            _figure("perception.injection_ngrams_changed_frame_p50", ngrams_ms, "ms", None),
            _figure("perception.injection_patterns_changed_frame_p50", patterns_ms, "ms", None),
            _figure("perception.injection_corpus_scoring", round(corpus_s, 2), "s", None),
            _figure("perception.injection_corpus_per_screen",
                    round(1000 * corpus_s / len(corpus), 2), "ms", None)]


def _figure(name: str, value: float, unit: str, target: float | None) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "target": target}


def run_benchmarks() -> list[dict[str, Any]]:
    """Every perception figure, each a ``{"name", "value", "unit", "target"}`` dict."""
    return [*bench_screen_parse(), *bench_other_scripts(), *bench_triage(),
            *bench_injection_detector()]


if __name__ == "__main__":
    for figure in run_benchmarks():
        print(json.dumps(figure))
