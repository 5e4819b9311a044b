"""Text vectors with sentence-transformers (all-MiniLM-L6-v2 in the packaged profile)."""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from models.base import LazyModel, quiet_transformers
from models.types import ModelLocation

__all__ = ["SentenceTransformerTextEmbedder"]


class SentenceTransformerTextEmbedder(LazyModel):
    """Mean-pooled sentence vectors, L2-normalised. Options: ``batch_size``, ``query_prefix``."""

    role = "text_embedder"
    backend_name = "sentence-transformers"

    def __init__(self, model: str | None = None, *, batch_size: int = 32, query_prefix: str = "",
                 max_length: int | None = None, **kw):
        super().__init__(model, **kw)
        self.batch_size = batch_size
        self.max_length = max_length
        self.query_prefix = query_prefix
        self._dim: int | None = None
        self._run_lock = threading.Lock()

    def _load(self, location: ModelLocation, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        quiet_transformers()

        self._model = SentenceTransformer(str(location.path), device=device, local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self._dim = int(get_dim())
        if self.max_length:
            self._model.max_seq_length = min(self.max_length, self._model.max_seq_length or self.max_length)

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._run_lock:
            vecs = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]
