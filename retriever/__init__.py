"""Retrieval: keyword and vector channels over an index, fused per video.

Public API: :class:`Retriever`, :class:`RetrievalOptions`, :class:`Hit`, :class:`ScoredMoment`.
"""

from retriever.api import (
    Hit, IndexNeedsRepairError, NoIndexError, RetrievalOptions, Retriever, ScoredMoment, clean_query,
)
from retriever.fusion import FUSIONS, fuse

__all__ = ["FUSIONS", "Hit", "IndexNeedsRepairError", "NoIndexError", "RetrievalOptions", "Retriever", "ScoredMoment",
           "clean_query", "fuse"]
