"""Two text embedders in one vector space: a weighted sum of their cosines.

all-MiniLM-L6-v2 is the better English embedder, the multilingual Universal Sentence
Encoder the one that matches a question with speech in another language
(docs/EVALUATION.md). This backend runs both and joins their vectors so that one inner
product scores ``a * cos_first + (1 - a) * cos_second``: the existing text vector space
(FAISS, inner product) holds it with no change to the index.

How the weight is carried: a document vector is the parts' unit vectors side by side,
each divided by sqrt(n) (n parts), so it has unit length; a query vector is the parts'
unit vectors each multiplied by ``sqrt(n) * weight``. Their inner product is the weighted
cosine sum, and since only queries carry the weight, changing it needs no re-indexing (the
index records the parts, not the weight). A query vector is therefore not of unit length.

The model name lists the parts' backends joined by ``+`` (``sentence-transformers+use-numpy``);
each part is built the way the model hub builds that backend alone, with its own default
model, the same weights lookup and the same options (batch size, token cap).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from models.base import LazyModel
from models.errors import ConfigError
from models.types import ModelLocation

__all__ = ["TextEmbedderPair", "CombinedTextEmbedder", "COMBINED_MODEL", "COMBINED_WEIGHT"]

COMBINED_MODEL = "sentence-transformers+use-numpy"
# MiniLM's share of the score. At the default semantic_floor (0.2), 0.25, 0.5 and 0.75 tie on the
# tune split of the evaluation sets (benchmarks/eval/tune_embedder.py, docs/EVALUATION.md): the middle.
COMBINED_WEIGHT = 0.5


class TextEmbedderPair(LazyModel):
    """Two text embedder backends run as one, their model name the parts' backends joined by
    :attr:`separator`; each part built the way the hub builds that backend alone. Subclasses say how
    the parts' vectors are laid out in the one space (``dim``, ``embed_documents``, ``embed_query``)."""

    role = "text_embedder"
    separator = "+"
    example = COMBINED_MODEL

    def __init__(self, model: str | None = None, *, path: str | None = None, device: str = "auto",
                 cache_dir: Any = None, hf_repo: str | None = None, **options: Any):
        super().__init__(model, path=path, device=device, cache_dir=cache_dir, hf_repo=hf_repo)
        if path:
            raise ConfigError(f"text_embedder_path names one model's weights; the {self.backend_name} text embedder "
                              "finds each part's own (set no path, or choose a single backend)")
        names = [n.strip() for n in self.model_name.split(self.separator)]
        if len(names) != 2 or not all(names) or self.backend_name in names:
            raise ConfigError(f"{self.backend_name} text embedder: model {self.model_name!r} must name two text "
                              f"embedder backends joined by {self.separator!r}, e.g. {self.example!r}")
        from models.hub import ModelHub, ModelsConfig, RoleConfig

        # Each part exactly as the hub builds that backend alone: its default model, its options.
        self.parts = [ModelHub(ModelsConfig(profile="packaged", device=device, cache_dir=self.cache_dir, roles={
            self.role: RoleConfig(backend=name, options=dict(options))})).require(self.role) for name in names]

    def locate(self) -> ModelLocation:
        """Where each part's weights are; the first part's folder stands for the pair."""
        if self._location is None:
            found = [part.locate() for part in self.parts]
            where = "; ".join(f"{part.backend_name}: {loc.source} {loc.path}" for part, loc in zip(self.parts, found))
            if all(loc.source.startswith("packaged wheel") for loc in found):  # says where, as one model's would
                where = f"packaged wheels ({where})"
            self._location = ModelLocation(found[0].path, where)
        return self._location

    def _load(self, location: ModelLocation, device: str) -> None:
        for part in self.parts:
            part.load()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "parts": [part.info() for part in self.parts]}


class CombinedTextEmbedder(TextEmbedderPair):
    """Text vectors of two embedders whose inner product is a weighted sum of cosines.

    Options: ``weight`` (the first part's share of the score, 0 to 1; the second part gets the
    rest), and any option of the parts (each takes the ones it has).
    """

    backend_name = "combined"

    def __init__(self, model: str | None = None, *, weight: float = COMBINED_WEIGHT, **options: Any):
        super().__init__(model, **options)  # named options, not kw: the hub then passes every option on
        self.weight = weight

    @property
    def weight(self) -> float:
        """The first part's share of the score; may be changed between queries (documents do not depend on it)."""
        return self._weights[0]

    @weight.setter
    def weight(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"combined text embedder: weight must be between 0 and 1, not {value}")
        self._weights = (value, 1.0 - value)

    @property
    def dim(self) -> int:
        return sum(part.dim for part in self.parts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        scale = 1.0 / np.sqrt(len(self.parts))
        return np.ascontiguousarray(np.hstack([part.embed_documents(texts) * scale for part in self.parts]),
                                    dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """The query vector: its inner product with a document vector is the weighted sum of cosines."""
        self.load()
        root = np.sqrt(len(self.parts))
        vecs = [part.embed_query(text) * (root * w) if w else np.zeros(part.dim, dtype=np.float32)
                for part, w in zip(self.parts, self._weights)]  # a part weighted 0 is not run
        return np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weight": self.weight}
