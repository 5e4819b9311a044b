"""Retrieval: keyword and vector channels over an index, fused per video.

Public API: :class:`Retriever`, :class:`RetrievalOptions`, :class:`Hit`, :class:`ScoredMoment`.
"""

from retriever.api import (
    DEFAULT_WEIGHTS, Hit, IndexNeedsRepairError, NoIndexError, RetrievalOptions, Retriever, ScoredMoment, clean_query,
)
from retriever.fusion import FUSIONS, fuse

__all__ = ["DEFAULT_WEIGHTS", "FUSIONS", "Hit", "IndexNeedsRepairError", "NoIndexError", "RetrievalOptions",
           "Retriever", "ScoredMoment", "clean_query", "fuse"]
