"""The vector indexes: one FAISS inner-product index per vector space, flat or IVF by size.

A flat index searches every vector; past ``ivf_above`` vectors the index is rebuilt as IVF
(clustered) and retrained when it outgrows its lists (:meth:`VectorStore.needs_rebuild`). Each
kind stores its vectors in the encoding the options ask for (float32, or FAISS's scalar
quantizers: float16, 8-bit, 4-bit); an index in another kind or encoding than the options want
is rebuilt from the catalog, whose float32 vectors stay the source of truth. Ids are the
catalog's owner ids (moments, keyframes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from indexer.catalog import Catalog
from models.errors import ConfigError, IndexMismatchError

__all__ = ["VectorIndexOptions", "VECTOR_INDEX_KINDS", "VECTOR_ENCODINGS", "MIN_IVF_VECTORS", "ivf_lists",
           "VectorStore"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class VectorIndexOptions:
    """Which FAISS index holds a vector space, and how it stores each vector.

    ``flat`` compares the query with every vector. ``ivf`` is approximate: the vectors are
    clustered into ``nlist`` lists (about 4 * sqrt(n)) and a search scans the ``nprobe``
    lists nearest the query. ``auto`` uses flat up to ``ivf_above`` vectors and ivf above.

    ``encoding`` is what each dimension of a stored vector takes: ``float32`` (4 bytes,
    exact), ``float16`` (2), ``8bit`` (1) or ``4bit`` (half a byte: FAISS scalar quantizers,
    one range per dimension trained on the vectors). ``auto`` is float32 for a flat index
    and 4bit for an IVF one: exact while the library is small, an eighth of the memory at a
    million moments.
    """

    kind: str = "auto"  # auto | flat | ivf
    ivf_above: int = 50_000
    nprobe: int = 48
    encoding: str = "auto"  # auto | float32 | float16 | 8bit | 4bit

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_INDEX_KINDS:
            raise ConfigError(f"invalid vector index {self.kind!r}, expected one of: {', '.join(VECTOR_INDEX_KINDS)}")
        if self.encoding not in ("auto", *VECTOR_ENCODINGS):
            raise ConfigError(f"invalid vector encoding {self.encoding!r}, expected one of: auto, "
                              f"{', '.join(VECTOR_ENCODINGS)}")
        if self.nprobe < 1 or self.ivf_above < 0:
            raise ConfigError(f"vector_nprobe must be at least 1 and vector_ivf_above at least 0, not "
                             f"{self.nprobe} and {self.ivf_above}")

    def wanted(self, n: int) -> str:
        """The kind of index for ``n`` vectors."""
        if self.kind != "auto":
            return self.kind
        return "ivf" if n > self.ivf_above else "flat"

    def wanted_encoding(self, kind: str) -> str:
        """The encoding of the vectors in an index of ``kind`` (flat or ivf)."""
        if self.encoding != "auto":
            return self.encoding
        return "4bit" if kind == "ivf" else "float32"


VECTOR_INDEX_KINDS = ("auto", "flat", "ivf")
# encoding -> the FAISS index_factory name of its scalar quantizer (None: plain float32)
VECTOR_ENCODINGS = {"float32": None, "float16": "SQfp16", "8bit": "SQ8", "4bit": "SQ4"}
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
        self._outgrown = False  # vectors added since training fell outside a flat quantizer's ranges

    def load(self) -> "VectorStore":
        import faiss

        self.index = faiss.read_index(str(self.path)) if self.path.exists() else None
        self._outgrown = False
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
    def encoding(self) -> str | None:
        """How the index stores its vectors (one of ``VECTOR_ENCODINGS``); None when empty."""
        if self.index is None:
            return None
        quantizer = self._quantizer()
        if quantizer is None:
            return "float32"
        names = {_qtype(code): name for name, code in VECTOR_ENCODINGS.items() if code}
        return names.get(int(quantizer.qtype), f"qtype {int(quantizer.qtype)}")

    def _quantizer(self) -> Any:
        """The index's FAISS ScalarQuantizer, or None for float32 vectors."""
        import faiss

        ivf = self._ivf()
        inner = faiss.downcast_index(ivf if ivf is not None else self.index.index)
        return getattr(inner, "sq", None)

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def dim(self) -> int | None:
        return None if self.index is None else int(self.index.d)

    def _ensure(self, matrix: np.ndarray) -> None:
        """A new flat index for vectors like ``matrix`` (its quantizer trained on them), or a
        check that the index holds vectors of this size."""
        import faiss

        dim = matrix.shape[1]
        if self.index is None:
            code = VECTOR_ENCODINGS[self.options.wanted_encoding("flat")]
            if code is None:
                inner = faiss.IndexFlatIP(dim)
            else:
                inner = faiss.IndexScalarQuantizer(dim, _qtype(code), faiss.METRIC_INNER_PRODUCT)
                inner.train(matrix)  # one range per dimension (float16 needs none)
            self.index = faiss.IndexIDMap2(inner)
            self._outgrown = False
        elif self.index.d != dim:
            raise IndexMismatchError(f"{self.path}: vectors of {self.index.d} dimensions, got {dim}")

    def add(self, ids: Sequence[int], matrix: np.ndarray) -> None:
        if len(ids) == 0:
            return
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._ensure(matrix)
        if self._ivf() is None:
            self._outgrown = self._outgrown or self._outside_ranges(matrix)
        self.index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))

    def _outside_ranges(self, matrix: np.ndarray) -> bool:
        """Some value of ``matrix`` lies more than one quantization step outside the range a flat
        8-bit or 4-bit quantizer was trained for (it would be clipped): the ranges were trained
        on fewer vectors than the index now holds, so it is worth training them again."""
        import faiss

        quantizer = self._quantizer()
        if quantizer is None or quantizer.qtype not in (_qtype("SQ8"), _qtype("SQ4")):
            return False
        trained = faiss.vector_to_array(quantizer.trained)
        low, width = trained[:matrix.shape[1]], trained[matrix.shape[1]:]
        step = width / (255 if quantizer.qtype == _qtype("SQ8") else 15)
        return bool(np.any(matrix < low - step) or np.any(matrix > low + width + step))

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
        """The index is of another kind or encoding than the options want for its size, an IVF
        index has outgrown its lists (4x the vectors it was trained for), or vectors added to a
        flat quantized one fell outside its trained ranges."""
        n = self.ntotal
        if n == 0:
            return False
        want = self.options.wanted(n) if n >= MIN_IVF_VECTORS else "flat"
        # hysteresis: an automatic ivf index shrinks back to flat only well below the limit
        if want != self.kind and not (self.options.kind == "auto" and self.kind == "ivf"
                                      and n > self.options.ivf_above // 2):
            return True
        if self.encoding != self.options.wanted_encoding(self.kind) or self._outgrown:
            return True
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
        self._outgrown = False
        n = len(ids)
        if n == 0:
            return
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if (self.options.wanted(n) if n >= MIN_IVF_VECTORS else "flat") == "flat":
            self.add(ids, matrix)
            return
        nlist = ivf_lists(n)
        dim = matrix.shape[1]
        code = VECTOR_ENCODINGS[self.options.wanted_encoding("ivf")] or "Flat"
        index = faiss.index_factory(dim, f"IVF{nlist},{code}", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10
        ivf.cp.seed = 1234
        sample = np.random.default_rng(1234).choice(n, size=min(n, 40 * nlist), replace=False)
        log.info("training an IVF index of %d lists (%s) on %d of the %d %s vectors", nlist, code, len(sample), n,
                 self.space)
        index.train(matrix[np.sort(sample)])
        index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
        self.index = index
        self._configure()

    def search(self, query: np.ndarray, k: int,
               exact: Callable[[np.ndarray], dict[int, np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) of the ``k`` nearest vectors, best first (approximate for ivf).

        ``exact`` gives the float32 vectors of ids (the catalog's, e.g. ``Catalog.vectors_of``):
        with it, the candidates a quantized index finds are scored again with their exact
        vectors, so the cosines are exact and only which ``k`` are found depends on the
        quantizer. Ids it does not know (removed since the index was written) are left out.
        """
        if self.index is None or self.index.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(query, min(k, int(self.index.ntotal)))
        keep = ids[0] >= 0
        ids, scores = ids[0][keep], scores[0][keep]
        if exact is None or self.encoding == "float32" or not len(ids):
            return ids, scores
        vectors = exact(ids)
        ids = np.asarray([i for i in ids.tolist() if i in vectors], dtype=np.int64)
        if not len(ids):
            return ids, np.zeros(0, np.float32)
        scores = np.stack([vectors[i] for i in ids.tolist()]) @ query[0]
        order = np.argsort(-scores, kind="stable")
        return ids[order], scores[order].astype(np.float32)



def _qtype(code: str) -> int:
    """FAISS's ScalarQuantizer type of an index_factory code (SQ8 -> QT_8bit)."""
    import faiss

    return int(getattr(faiss.ScalarQuantizer, {"SQfp16": "QT_fp16", "SQ8": "QT_8bit", "SQ4": "QT_4bit"}[code]))
