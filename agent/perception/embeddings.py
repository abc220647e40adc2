"""Sentence embeddings from WordLlama's weights, which ship inside its wheel.

WordLlama is a token-embedding table distilled from a large language model:
a sentence's vector is the average of its tokens' rows.  That is all this
module does, with the tokenizer and the table read straight from the
installed ``wordllama`` package's files.  The package's own loader is not
used: it configures the root logger on import and, for the tokenizer, looks
in the wrong folder and then tries to download from the network.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.perception.errors import ModelUnavailable

Vectors = npt.NDArray[np.float32]

_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


class WordLlamaEmbedder:
    """Maps texts to unit-length 256-dimensional vectors (cosine = dot product)."""

    def __init__(self, table: npt.NDArray[np.floating[Any]], tokenizer: object) -> None:
        self._table = table
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, folder: Path | None = None) -> WordLlamaEmbedder:
        """Load from the installed ``wordllama`` package (or ``folder`` laid out like it)."""
        folder = folder or _package_folder()
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            table = load_file(str(folder / _WEIGHTS))["embedding.weight"]
            tokenizer = Tokenizer.from_file(str(folder / _TOKENIZER))
        except Exception as exc:  # safetensors/tokenizers raise untyped errors from Rust
            raise ModelUnavailable(
                f"cannot load WordLlama's shipped weights from {folder}: {exc}; "
                "pip install wordllama") from exc
        # Kept as shipped (float16): half the memory of a float32 copy, and a row
        # widened to float32 when it is averaged is the same number either way.
        return cls(np.ascontiguousarray(table), tokenizer)

    @property
    def dimensions(self) -> int:
        return int(self._table.shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text (a zero vector for text with no tokens)."""
        encodings = self._tokenizer.encode_batch(  # type: ignore[attr-defined]
            list(texts), add_special_tokens=False)
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            # The tokenizer file may switch padding on: only real tokens count.
            mask = np.asarray(encoding.attention_mask, dtype=bool)
            ids = np.asarray(encoding.ids, dtype=np.int64)[mask]
            if ids.size:
                rows = self._table[np.clip(ids, 0, len(self._table) - 1)]
                vectors[row] = rows.astype(np.float32).mean(axis=0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = vectors / np.maximum(norms, 1e-9)
        return unit


def _package_folder() -> Path:
    # find_spec locates the package without importing it (its import has
    # side effects on logging).
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the triage model comes with the 'wordllama' package: "
                               "pip install wordllama")
    return Path(next(iter(spec.submodule_search_locations)))
