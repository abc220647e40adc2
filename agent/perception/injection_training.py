"""Train and evaluate the learned injection detector on the shipped corpus.

``python -m agent.perception.injection_training`` retrains the weights
(``data/injection_model.npz``) from the training half of
``data/injection_corpus.jsonl`` and prints the held-out table; ``--check``
only evaluates the shipped weights.  Training is deterministic: the same
corpus gives the same weights.

How it learns (numpy only, a few seconds):

1. Examples.  Each training screen is one example, plus a copy with OCR-like
   noise (confusable letters, dropped spaces).
2. A logistic regression with L2, fitted by full-batch Adam.
3. Five fold models, averaged into the shipped one; the threshold is the
   lowest that keeps at most :data:`TARGET_FALSE_POSITIVES` of the training
   screens' ordinary ones flagged, scored out of fold (:func:`train`).  The
   held-out half is never seen.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from agent.perception.injection_model import (
    DIMENSIONS,
    Cues,
    Floats,
    InjectionModel,
    SparseRows,
    cue_width,
    featurise,
)
from agent.perception.injection_spans import text_spans
from agent.perception.screen import TextElement

CORPUS_FILE = "injection_corpus.jsonl"
# More training screens, written after the corpus; never evaluated on.  The
# second was written by others than the detector's author (14 languages), with
# the first half of the fresh set below.
SUPPLEMENT_FILES = ("injection_training_extra.jsonl", "injection_training_extra2.jsonl")
# A fresh evaluation set, written independently of everything above and never
# trained or tuned on: the closest figure to "text nobody here wrote".
FRESH_FILE = "injection_fresh.jsonl"
# A larger independent set (1,200 screens, 23 languages, mostly hard negatives), written
# by four others from a description of the task alone, after the weights were shipped; a
# trial showed training on half of it does not lift the other half: it measures how far
# character n-grams carry to text nobody here wrote, and is never trained on.
INDEPENDENT_FILE = "injection_independent.jsonl"
TARGET_FALSE_POSITIVES = 0.08
L2 = 1e-4
STEPS = 300
LEARNING_RATE = 0.05
FOLDS = 5
SEED = 15
# Letters OCR mixes up, for the noisy copies.
_CONFUSABLE = {"l": "I", "i": "l", "o": "0", "0": "o", "rn": "m", "e": "c", "a": "o", "s": "5"}


@dataclass(frozen=True, slots=True)
class CorpusScreen:
    """One labelled screen of the corpus."""

    id: str
    label: str
    language: str
    format: str
    split: str
    text: str

    @property
    def injection(self) -> bool:
        return self.label == "injection"


def load_corpus(name: str = CORPUS_FILE) -> list[CorpusScreen]:
    """Every screen of a shipped corpus file (``data/<name>``)."""
    text = resources.files("agent.perception").joinpath("data", name).read_text("utf-8")
    return [CorpusScreen(**json.loads(line)) for line in text.splitlines() if line.strip()]


def training_screens() -> list[CorpusScreen]:
    """What the shipped weights learn from: the corpus's training half and the supplement."""
    return split(load_corpus(), "train") + [
        screen for name in SUPPLEMENT_FILES for screen in load_corpus(name)]


def noisy_copy(text: str, rng: random.Random) -> str:
    """``text`` as a careless OCR might read it: a few confusions and lost spaces."""
    out = []
    for char in text:
        if char == " " and rng.random() < 0.08:
            continue
        swap = _CONFUSABLE.get(char)
        out.append(swap if swap is not None and rng.random() < 0.04 else char)
    return "".join(out)


# -- fitting -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Examples:
    texts: list[str]
    labels: list[float]


def base_examples(screens: Sequence[CorpusScreen], rng: random.Random) -> Examples:
    """Screens and their noisy copies.

    Adding every candidate span of ordinary screens as more negatives was
    tried: it lowered held-out recall at the same false-positive rate
    (short ordinary lines then look like short orders), so it is off.
    """
    texts: list[str] = []
    labels: list[float] = []
    for screen in screens:
        label = 1.0 if screen.injection else 0.0
        variants = [screen.text, noisy_copy(screen.text, rng)]
        texts += variants
        labels += [label] * len(variants)
    return Examples(texts, labels)


def fit(rows: SparseRows, labels: Floats, width: int, *,
        steps: int = STEPS) -> tuple[Floats, float]:
    """Logistic regression (classes weighted to balance) by full-batch Adam."""
    positives = float(labels.sum())
    balance = np.where(labels > 0.5, 0.5 / max(positives, 1.0),
                       0.5 / max(len(labels) - positives, 1.0)).astype(np.float32)
    weights = np.zeros(width, dtype=np.float32)
    bias = 0.0
    first = np.zeros(width + 1, dtype=np.float32)
    second = np.zeros(width + 1, dtype=np.float32)
    entry_rows = rows.row_of_entry()
    for step in range(1, steps + 1):
        logits = rows.dot(weights) + bias
        residual = (1.0 / (1.0 + np.exp(-logits)) - labels) * balance
        gradient = np.empty(width + 1, dtype=np.float32)
        gradient[:-1] = np.bincount(rows.columns, weights=rows.values * residual[entry_rows],
                                    minlength=width) + L2 * weights
        gradient[-1] = residual.sum()
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient * gradient
        update = LEARNING_RATE * (first / (1 - 0.9 ** step)) / (
            np.sqrt(second / (1 - 0.999 ** step)) + 1e-8)
        weights -= update[:-1]
        bias -= float(update[-1])
    return weights, bias


def train_model(screens: Sequence[CorpusScreen]) -> InjectionModel:
    """One logistic regression fitted on ``screens`` (threshold not yet chosen).

    Training on whole screens and scoring spans was compared with adding each
    injection screen's best span as a further positive after a first fit
    (multiple-instance rounds): the rounds lowered held-out recall, so
    screens are fitted whole.
    """
    examples = base_examples(screens, random.Random(SEED))
    cues = Cues.load()
    width = DIMENSIONS + cue_width(len(cues.names))
    weights, bias = fit(featurise(examples.texts, cues),
                        np.asarray(examples.labels, dtype=np.float32), width)
    return InjectionModel(weights, bias, 0.0, cues)


def screen_logit(model: InjectionModel, text: str) -> float:
    """The highest raw logit over the screen's candidate spans."""
    spans = [span.text for span in text_spans(text)] or [text]
    return float(model.logits(spans).max())


def train(screens: Sequence[CorpusScreen]) -> InjectionModel:
    """The shipped recipe: five fold models, averaged; the threshold from their out-of-fold scores.

    Each fold model scores the training screens it did not see; the
    threshold keeps at most TARGET_FALSE_POSITIVES of those ordinary screens
    above it.  The shipped model is the average of the fold models (a linear
    model again), so the threshold is applied to models of the kind that
    chose it, not to one fitted on more data whose scores run higher.
    """
    order = sorted(screens, key=lambda s: s.id)
    random.Random(SEED).shuffle(order)
    ordinary_scores: list[float] = []
    members: list[InjectionModel] = []
    for fold in range(FOLDS):
        held = order[fold::FOLDS]
        kept = [s for s in order if s not in held]
        member = train_model(kept)
        members.append(member)
        ordinary_scores += [screen_logit(member, s.text) for s in held if not s.injection]
    ordinary_scores.sort(reverse=True)
    allowed = int(TARGET_FALSE_POSITIVES * len(ordinary_scores))
    weights = np.mean([m.weights for m in members], axis=0).astype(np.float32)
    bias = float(np.mean([m.bias for m in members]))
    return InjectionModel(weights, bias, ordinary_scores[allowed] + 1e-3, members[0].cues)


def save(model: InjectionModel, path: Path) -> None:
    np.savez_compressed(path, weights=model.weights.astype(np.float16),
                        bias=np.float32(model.bias),
                        threshold_logit=np.float32(model.threshold_logit),
                        cue_names=np.asarray(model.cues.names))


# -- evaluation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LanguageFigures:
    language: str
    injections: int
    caught: int
    ordinary: int
    flagged: int

    @property
    def recall(self) -> float:
        return self.caught / self.injections if self.injections else 1.0

    @property
    def false_positive_rate(self) -> float:
        return self.flagged / self.ordinary if self.ordinary else 0.0


def evaluate(flags: Iterable[tuple[CorpusScreen, bool]]) -> list[LanguageFigures]:
    """Per-language recall and false positives, with an ``all`` row last."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for screen, flagged in flags:
        for key in (screen.language, "all"):
            row = counts[key]
            if screen.injection:
                row[0] += 1
                row[1] += int(flagged)
            else:
                row[2] += 1
                row[3] += int(flagged)
    languages = [*sorted(k for k in counts if k != "all"), "all"]
    return [LanguageFigures(k, *counts[k]) for k in languages]


def detector_flags(model: InjectionModel,
                   screens: Sequence[CorpusScreen]) -> list[tuple[CorpusScreen, bool]]:
    return [(s, screen_logit(model, s.text) >= model.threshold_logit) for s in screens]


def combined_flags(model: InjectionModel,
                   screens: Sequence[CorpusScreen]) -> list[tuple[CorpusScreen, bool]]:
    """Flags of the detector or the English patterns (what the policy is told)."""
    from agent.perception.injection import InjectionGuard

    guard = InjectionGuard()
    return [(screen, flagged or guard.assess(lines_as_words(screen.text), "").flagged)
            for screen, flagged in detector_flags(model, screens)]


def lines_as_words(text: str) -> list[TextElement]:
    """Plain text laid out as OCR would report it: one phrase a line, 20 px apart."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [TextElement(line, 10, 20 * row, 10 + 8 * len(line), 20 * row + 14, 1.0)
            for row, line in enumerate(lines)]


def table(figures: Sequence[LanguageFigures], title: str) -> str:
    lines = [title, f"{'language':<9}{'injections':>11}{'recall':>9}{'ordinary':>10}"
                    f"{'false pos.':>12}"]
    for row in figures:
        lines.append(f"{row.language:<9}{row.injections:>11}{row.recall:>9.1%}"
                     f"{row.ordinary:>10}{row.false_positive_rate:>12.1%}")
    return "\n".join(lines)


def split(screens: Sequence[CorpusScreen], name: str) -> list[CorpusScreen]:
    return [s for s in screens if s.split == name]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="evaluate the shipped weights only")
    parser.add_argument("--out", type=Path, help="where to write the weights "
                        "(default: the package's data/injection_model.npz)")
    args = parser.parse_args(argv)
    corpus = load_corpus()
    if args.check:
        model = InjectionModel.load()
    else:
        model = train(training_screens())
        out = args.out or Path(str(resources.files("agent.perception") / "data"
                                   / "injection_model.npz"))
        save(model, out)
        model = InjectionModel.load(out)
    held = split(corpus, "heldout")
    print(table(evaluate(detector_flags(model, held)), "held-out half: learned detector"))
    print(table(evaluate(combined_flags(model, held)), "held-out half: detector or patterns"))
    fresh = load_corpus(FRESH_FILE)
    print(table(evaluate(combined_flags(model, fresh)), "fresh set: detector or patterns"))
    independent = load_corpus(INDEPENDENT_FILE)
    print(table(evaluate(combined_flags(model, independent)),
                "independent set: detector or patterns"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
