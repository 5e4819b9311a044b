"""The vector indexes: one FAISS inner-product index per vector space, flat or IVF by size.

A flat index searches every vector exactly; past ``ivf_above`` vectors the index is
rebuilt as IVF (clustered, 8-bit) and retrained when it outgrows its lists
(:meth:`VectorStore.needs_rebuild`). Ids are the catalog's owner ids (moments, keyframes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexer.catalog import Catalog
from models.errors import ConfigError, IndexMismatchError

__all__ = ["VectorIndexOptions", "VECTOR_INDEX_KINDS", "MIN_IVF_VECTORS", "ivf_lists", "VectorStore"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class VectorIndexOptions:
    """Which FAISS index holds a vector space.

    ``flat`` searches every vector exactly (memory: 4 bytes a dimension). ``ivf`` is
    approximate: the vectors are clustered into ``nlist`` lists (about 4 * sqrt(n)), stored
    as 8-bit scalars (1 byte a dimension) and a search scans the ``nprobe`` lists nearest
    the query. ``auto`` uses flat up to ``ivf_above`` vectors and ivf above.
    """

    kind: str = "auto"  # auto | flat | ivf
    ivf_above: int = 50_000
    nprobe: int = 48

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_INDEX_KINDS:
            raise ConfigError(f"invalid vector index {self.kind!r}, expected one of: {', '.join(VECTOR_INDEX_KINDS)}")
        if self.nprobe < 1 or self.ivf_above < 0:
            raise ConfigError(f"vector_nprobe must be at least 1 and vector_ivf_above at least 0, not "
                             f"{self.nprobe} and {self.ivf_above}")

    def wanted(self, n: int) -> str:
        """The kind of index for ``n`` vectors."""
        if self.kind != "auto":
            return self.kind
        return "ivf" if n > self.ivf_above else "flat"


VECTOR_INDEX_KINDS = ("auto", "flat", "ivf")
MIN_IVF_VECTORS = 1_000  # below this an IVF index is pointless: flat is used whatever the setting


def ivf_lists(n: int) -> int:
    """The number of IVF lists for ``n`` vectors: about 4 * sqrt(n), with at least 39 vectors
    each to train on (FAISS's minimum), and at least 16."""
    return max(16, min(int(4 * n ** 0.5), n // 39))


class VectorStore:
    """One FAISS inner-product index per vector space; ids are the catalog's owner ids."""

    def __init__(self, index_dir: Path, space: str, options: VectorIndexOptions = VectorIndexOptions()):
        self.space = space
        self.options = options
        self.path = Path(index_dir) / f"faiss-{space}.index"
        self.index = None

    def load(self) -> "VectorStore":
        import faiss

        self.index = faiss.read_index(str(self.path)) if self.path.exists() else None
        self._configure()
        return self

    def _configure(self) -> None:
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = min(self.options.nprobe, ivf.nlist)

    def _ivf(self) -> Any:
        import faiss

        if self.index is None:
            return None
        try:
            return faiss.extract_index_ivf(self.index)
        except RuntimeError:  # not an IVF index
            return None

    @property
    def kind(self) -> str:
        """``flat``, ``ivf`` or ``empty``."""
        if self.index is None:
            return "empty"
        return "flat" if self._ivf() is None else "ivf"

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def dim(self) -> int | None:
        return None if self.index is None else int(self.index.d)

    def _ensure(self, dim: int) -> None:
        import faiss

        if self.index is None:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif self.index.d != dim:
            raise IndexMismatchError(f"{self.path}: vectors of {self.index.d} dimensions, got {dim}")

    def add(self, ids: Sequence[int], matrix: np.ndarray) -> None:
        if len(ids) == 0:
            return
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._ensure(matrix.shape[1])
        self.index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> None:
        if self.index is not None and len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def save(self) -> None:
        import faiss

        if self.index is None:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.path)

    def needs_rebuild(self) -> bool:
        """The index is of another kind than the options want for its size, or an IVF index
        has outgrown its lists (4x the vectors it was trained for)."""
        n = self.ntotal
        if n == 0:
            return False
        want = self.options.wanted(n) if n >= MIN_IVF_VECTORS else "flat"
        if want != self.kind:
            # hysteresis: an automatic ivf index shrinks back to flat only well below the limit
            return not (self.options.kind == "auto" and self.kind == "ivf" and n > self.options.ivf_above // 2)
        ivf = self._ivf()
        return ivf is not None and ivf_lists(n) >= 2 * ivf.nlist

    def rebuild(self, catalog: Catalog) -> None:
        ids, matrix = catalog.vectors(self.space)
        self.build(ids, matrix)
        self.save()

    def build(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        """A new index of the kind the options want for these vectors."""
        import faiss

        self.index = None
        n = len(ids)
        if n == 0:
            return
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if (self.options.wanted(n) if n >= MIN_IVF_VECTORS else "flat") == "flat":
            self.add(ids, matrix)
            return
        nlist = ivf_lists(n)
        dim = matrix.shape[1]
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10
        ivf.cp.seed = 1234
        sample = np.random.default_rng(1234).choice(n, size=min(n, 40 * nlist), replace=False)
        log.info("training an IVF index of %d lists on %d of the %d %s vectors", nlist, len(sample), n, self.space)
        index.train(matrix[np.sort(sample)])
        index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
        self.index = index
        self._configure()

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) of the ``k`` nearest vectors, best first (approximate for ivf)."""
        if self.index is None or self.index.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(k, int(self.index.ntotal))
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

