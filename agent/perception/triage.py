"""Intent triage: what kind of task did the person delegate, and how risky is it?

The answer (:class:`policies.decision.Triage`) goes into the policy context,
where profile rules can match on its category and risk.

Categories and their risk tiers:

========================  =====  =============================================
category                  risk   examples
========================  =====  =============================================
look_only                 low    read, check, summarise what is on screen
edit_documents            low    change text, cells, slides inside a document
change_files              medium create, move, rename, delete, download files
system_settings           high   install software, network, users, services
credentials_or_payments   high   passwords, tokens, logins, buying, paying
send_or_publish           high   email, chat, post, share, submit, push
========================  =====  =============================================

A verdict with confidence below ``uncertain_below`` is raised to at least
medium risk: when triage is unsure, the policy should be careful.

Two triagers:

* :class:`CentroidTriager` (default): local, offline, ~0.2 ms a task.  The
  task is embedded with WordLlama (weights shipped in its wheel) and compared
  with the centroid of each category's labelled examples
  (``data/triage_examples.jsonl``); cue words from ``data/triage_cues.yaml``
  add to a category's score.
* :class:`OpenAITriager`: asks an OpenAI-compatible chat model (an injected
  ``openai.OpenAI`` client) for a JSON verdict.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

import numpy as np
import yaml

from agent.perception.embeddings import Vectors, WordLlamaEmbedder
from agent.perception.errors import TriageFailed
from policies.decision import Triage

if TYPE_CHECKING:
    import openai

Risk = Literal["low", "medium", "high"]

RISK_BY_CATEGORY: dict[str, Risk] = {
    "look_only": "low",
    "edit_documents": "low",
    "change_files": "medium",
    "system_settings": "high",
    "credentials_or_payments": "high",
    "send_or_publish": "high",
}
CATEGORIES: tuple[str, ...] = tuple(RISK_BY_CATEGORY)

# Weight of one cue-word match against a cosine similarity (which spreads
# over ~0.3 between categories); chosen by 5-fold cross-validation on the
# training examples (0.1-0.4 all score within 1 point).
CUE_WEIGHT = 0.15
# Matches counted per category, so a long task cannot pile up cue points.
_MAX_CUES = 2
# Softmax temperature that turns scores into a confidence.
_TEMPERATURE = 0.05


@runtime_checkable
class Triager(Protocol):
    """Classifies a task description before the agent starts on it."""

    def classify(self, task: str) -> Triage: ...


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled task description."""

    task: str
    category: str


def verdict(category: str, confidence: float, *, uncertain_below: float = 0.5) -> Triage:
    """The Triage for a category: its risk tier, raised to medium when unsure."""
    risk = RISK_BY_CATEGORY[category]
    if confidence < uncertain_below and risk == "low":
        risk = "medium"
    return Triage(category=category, risk=risk, confidence=round(confidence, 4))


def load_examples(name: str = "triage_examples.jsonl") -> list[Example]:
    """Labelled examples shipped in ``agent/perception/data`` (one JSON object a line)."""
    text = resources.files("agent.perception").joinpath("data", name).read_text("utf-8")
    examples = [_example(json.loads(line)) for line in text.splitlines() if line.strip()]
    unknown = {e.category for e in examples} - set(CATEGORIES)
    if unknown:
        raise ValueError(f"{name}: unknown categories {sorted(unknown)}")
    return examples


def _example(row: dict[str, Any]) -> Example:
    return Example(task=str(row["task"]), category=str(row["category"]))


def load_cues(name: str = "triage_cues.yaml") -> dict[str, re.Pattern[str]]:
    """One compiled pattern per category from the shipped cue list."""
    text = resources.files("agent.perception").joinpath("data", name).read_text("utf-8")
    raw: dict[str, list[str]] = yaml.safe_load(text)
    return {category: re.compile("|".join(rf"\b(?:{p})\b" for p in patterns), re.IGNORECASE)
            for category, patterns in raw.items()}


class CentroidTriager:
    """Nearest category centroid in WordLlama space, plus cue words."""

    def __init__(self, embedder: WordLlamaEmbedder, examples: Sequence[Example],
                 cues: dict[str, re.Pattern[str]] | None = None, *,
                 uncertain_below: float = 0.5) -> None:
        self._embedder = embedder
        self._categories = [c for c in CATEGORIES if any(e.category == c for e in examples)]
        self._centroids = _centroids(embedder, examples, self._categories)
        self._cues = [(cues or {}).get(c) for c in self._categories]
        self._uncertain_below = uncertain_below

    @classmethod
    def load(cls) -> CentroidTriager:
        """The default triager: shipped model, examples and cue words."""
        return cls(WordLlamaEmbedder.load(), load_examples(), load_cues())

    def classify(self, task: str) -> Triage:
        """The best category — but a high-risk one only with a cue word of its own.

        The embedding measures how a task *sounds*: "take a screenshot of the
        desktop" sounds like display settings.  High risk makes the policy ask
        before every step, so it needs evidence in the words themselves (a cue
        of that category); without one the best lower-risk category wins, and
        its risk is raised to at least medium because triage was torn.
        """
        cues = self._cue_counts(task)
        scores = self._combine(task, cues)
        ranked = [int(i) for i in np.argsort(-scores)]
        best = ranked[0]
        if not self._high_without_cue(best, cues):
            return verdict(self._categories[best], _softmax(scores)[best],
                           uncertain_below=self._uncertain_below)
        fallback = next((i for i in ranked if not self._high_without_cue(i, cues)), best)
        return verdict(self._categories[fallback], _softmax(scores)[fallback],
                       uncertain_below=1.1)  # torn: at least medium

    def scores(self, task: str) -> Vectors:
        """One score per category (in ``CATEGORIES`` order, present ones only)."""
        return self._combine(task, self._cue_counts(task))

    def _cue_counts(self, task: str) -> list[int]:
        return [min(len(p.findall(task)), _MAX_CUES) if p else 0 for p in self._cues]

    def _combine(self, task: str, cue_counts: list[int]) -> Vectors:
        similarity = self._centroids @ self._embedder.embed([task])[0]
        return cast(Vectors, similarity + CUE_WEIGHT * np.asarray(cue_counts, np.float32))

    def _high_without_cue(self, index: int, cue_counts: list[int]) -> bool:
        return RISK_BY_CATEGORY[self._categories[index]] == "high" and cue_counts[index] == 0


def _centroids(embedder: WordLlamaEmbedder, examples: Sequence[Example],
               categories: Sequence[str]) -> Vectors:
    vectors = embedder.embed([e.task for e in examples])
    labels = np.asarray([e.category for e in examples])
    centroids = np.stack([vectors[labels == c].mean(axis=0) for c in categories])
    return cast(Vectors, centroids / np.linalg.norm(centroids, axis=1, keepdims=True))


def _softmax(scores: Vectors) -> list[float]:
    top = float(scores.max())
    weights = [math.exp((float(s) - top) / _TEMPERATURE) for s in scores]
    return [w / sum(weights) for w in weights]


_SYSTEM_PROMPT = """You triage tasks that a person delegates to a desktop agent.
Answer with one JSON object: {"category": <one of %s>, "confidence": <0..1>}.
look_only: only reads or inspects. edit_documents: edits content inside a document.
change_files: creates, moves, renames, deletes or downloads files.
system_settings: installs software or changes system, network, user or device settings.
credentials_or_payments: passwords, tokens, logins, buying or paying.
send_or_publish: sends, shares, posts, submits or publishes to other people."""


class OpenAITriager:
    """Triage by an OpenAI-compatible chat model (e.g. a small local model behind vLLM).

    The model picks the category; the risk always comes from the category's
    tier, never from the model.
    """

    def __init__(self, client: openai.OpenAI, *, model: str, timeout_s: float = 10.0,
                 uncertain_below: float = 0.5) -> None:
        self._client = client
        self._model = model
        self._timeout_s = timeout_s
        self._uncertain_below = uncertain_below

    def classify(self, task: str) -> Triage:
        answer = self._ask(task)
        category, confidence = _parse_answer(answer)
        return verdict(category, confidence, uncertain_below=self._uncertain_below)

    def _ask(self, task: str) -> str:
        import openai  # only this triager needs the SDK (its import is ~40 MiB)

        try:
            response = self._client.chat.completions.create(
                model=self._model, temperature=0, timeout=self._timeout_s,
                response_format={"type": "json_object"},
                messages=[{"role": "system", "content": _SYSTEM_PROMPT % ", ".join(CATEGORIES)},
                          {"role": "user", "content": task}])
        except openai.OpenAIError as exc:
            raise TriageFailed(f"the triage model could not be reached: {exc}") from exc
        if not response.choices or not response.choices[0].message.content:
            raise TriageFailed("the triage model returned no answer")
        return response.choices[0].message.content


def _parse_answer(answer: str) -> tuple[str, float]:
    try:
        parsed = json.loads(answer)
        category, confidence = str(parsed["category"]), float(parsed.get("confidence", 0.5))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TriageFailed(f"the triage model's answer is not the JSON asked for: "
                           f"{answer[:200]!r}") from exc
    if category not in RISK_BY_CATEGORY:
        raise TriageFailed(f"the triage model named an unknown category {category!r}")
    return category, min(max(confidence, 0.0), 1.0)
