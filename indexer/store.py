"""Derived indexes: Whoosh (keywords) and FAISS (vectors), rebuilt from the catalog at will.

Layout of an index directory::

    catalog.sqlite3     source of truth (indexer.catalog)
    manifest.json       how the index was built: schema, models, vector dimensions
    derived.json        the catalog generation the files below reflect
    whoosh/             one document per video and one per moment
    faiss-<space>.index one inner-product index per vector space (ids = moment/keyframe ids)

When ``derived.json`` does not match the catalog (a crash between the catalog commit
and the derived update, or files deleted by hand), :func:`rebuild` makes them again
from the catalog; no model runs for that.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import math
import os
import pickle  # only the allow-list unpickler of Whoosh's files below
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from indexer.analysis import ANALYZER_VERSION, STOP_WORDS, analyzed, analyzer
from indexer.catalog import Catalog
from indexer.schema import SCHEMA_VERSION, Moment, Video
from models.errors import ConfigError, IndexLockedError, IndexMismatchError

__all__ = [
    "writer_lock", "KeywordStore", "VectorStore", "DerivedIndexes", "check_manifest", "write_manifest",
    "STOP_WORDS", "ANALYZER_VERSION", "VectorIndexOptions", "VECTOR_INDEX_KINDS", "KeywordOptions",
    "KEYWORD_ENGINES", "KEYWORD_STORES", "WhooshKeywordStore", "TantivyKeywordStore", "analyzer", "analyzed",
]

log = logging.getLogger(__name__)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock, or raise :class:`IndexLockedError` at once."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / "writer.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise IndexLockedError(
                f"{index_dir} is being written by {holder}; wait for it to finish, then run again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"videoqa index (pid {os.getpid()})")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- manifest ------------------------------------------------------------------------------

def check_manifest(catalog: Catalog, wanted: dict[str, Any]) -> dict[str, Any]:
    """Compare how the index was built with what the settings want.

    ``wanted`` has ``spaces``: {space: {"model": ..., "dim": ...}}. A space built with
    another model or dimension is a clear error, not silent garbage. Returns the
    stored manifest (empty for a new index).
    """
    have = catalog.manifest()
    for space, spec in wanted.get("spaces", {}).items():
        old = have.get("spaces", {}).get(space)
        if old and (old.get("model") != spec.get("model") or (spec.get("dim") and old.get("dim") != spec.get("dim"))):
            raise IndexMismatchError(
                f"{catalog.index_dir}: the {space} vectors were made with {old.get('model')} ({old.get('dim')}-d), "
                f"the settings ask for {spec.get('model')}"
                f"{' (' + str(spec.get('dim')) + '-d)' if spec.get('dim') else ''}; use the same model, "
                "or index into another --index-dir"
            )
    return have


def write_manifest(catalog: Catalog, manifest: dict[str, Any]) -> None:
    merged = catalog.manifest()
    spaces = {**merged.get("spaces", {}), **manifest.get("spaces", {})}
    merged.update(manifest)
    merged["spaces"] = spaces
    merged["schema_version"] = SCHEMA_VERSION
    catalog.set_manifest(merged)
    _atomic_write_text(catalog.index_dir / "manifest.json", json.dumps(merged, indent=2, sort_keys=True) + "\n")


# -- keywords ------------------------------------------------------------------------------

KEYWORD_ENGINES = ("auto", "whoosh", "tantivy")


@dataclass(frozen=True)
class KeywordOptions:
    """Which engine holds the keyword index.

    ``whoosh`` (pure Python; TF-IDF, or BM25F) is the reference design and fine for small
    libraries. ``tantivy`` (Rust; BM25 with block-max pruning) keeps keyword search at a
    few milliseconds at a million moments. ``auto`` uses Whoosh up to ``tantivy_above``
    moments and Tantivy above. Both index the terms of the same analyzer.
    """

    engine: str = "auto"
    tantivy_above: int = 50_000

    def __post_init__(self) -> None:
        if self.engine not in KEYWORD_ENGINES:
            raise ConfigError(f"invalid keyword engine {self.engine!r}, expected one of: {', '.join(KEYWORD_ENGINES)}")
        if self.tantivy_above < 0:
            raise ConfigError(f"keyword_tantivy_above must be at least 0, not {self.tantivy_above}")

    def wanted(self, moments: int, current: str | None = None) -> str:
        """The engine for an index of ``moments`` moments (``current``: the one in use, kept near the limit)."""
        if self.engine != "auto":
            return self.engine
        if current == "tantivy" and moments > self.tantivy_above // 2:
            return "tantivy"  # hysteresis: removing a few videos does not switch back
        return "tantivy" if moments > self.tantivy_above else "whoosh"


def _title(video: Video) -> str:
    return Path(video.name).stem.replace("_", " ").replace("-", " ")


class KeywordStore:
    """A keyword index with a document per video and one per moment.

    Video documents have the fields ``title`` (the file name) and ``body`` (all the video's
    text); moment documents have ``text``. A query on ``text`` finds moments only, one on
    ``title``/``body`` videos only, so no filter is needed (a filter over a million
    documents costs more than the search). Subclasses hold the engine.
    """

    DIRNAME = ""
    engine = ""

    def __init__(self, index_dir: Path):
        self.dir = Path(index_dir) / self.DIRNAME
        self._lock = threading.Lock()

    @property
    def analyzer(self):
        return analyzer()

    def exists(self) -> bool:
        raise NotImplementedError

    def refresh(self) -> None:
        """See documents committed by another process."""
        raise NotImplementedError

    def update(self, add: Sequence[tuple[Video, Sequence[Moment]]], remove_videos: Iterable[int] = ()) -> None:
        """Add (or replace) videos and their moments, drop others; committed on return."""
        raise NotImplementedError

    def _build(self, folder: Path, catalog: Catalog) -> None:
        raise NotImplementedError

    def search(self, terms: Sequence[str], fields: Sequence[str], limit: int,
               scorer: str = "tfidf") -> list[tuple[int, int | None, float]]:
        """(video id, moment id or None, raw score) of the best documents having any term in ``fields``."""
        raise NotImplementedError

    def idf(self, terms: Sequence[str], field: str, scorer: str = "tfidf") -> dict[str, float]:
        """Each term's inverse document frequency in ``field``, as the engine's scorer weighs it
        (a term in no document gets the highest)."""
        raise NotImplementedError

    def doc_keys(self) -> set[str]:
        """``v<video id>`` and ``m<moment id>`` of every document (for checks against the catalog)."""
        raise NotImplementedError

    def rebuild(self, catalog: Catalog) -> None:
        """Write a fresh index from the catalog next to the old one, then swap them."""
        tmp = self.dir.with_name(self.DIRNAME + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._build(tmp, catalog)
        old = self.dir.with_name(self.DIRNAME + ".old")
        shutil.rmtree(old, ignore_errors=True)
        self.close()
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        self.refresh()

    def close(self) -> None:
        self.refresh()

    def remove_files(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# Whoosh keeps its segment list, posting-block headers and position lists as pickles.
# They are read here through an allow-list: plain data (``_codecs.encode`` is how protocol 2
# writes bytes) and Whoosh's own codec classes, nothing that could run other code; the
# schema pickle is never read (we pass our own).
_PICKLE_BUILTINS = frozenset({"int", "float", "complex", "bool", "str", "bytes", "bytearray", "tuple", "list",
                              "dict", "set", "frozenset", "NoneType"})


class _WhooshUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module in ("builtins", "__builtin__") and name in _PICKLE_BUILTINS) or \
                (module, name) in (("collections", "defaultdict"), ("_codecs", "encode")) or \
                (module.startswith("whoosh.codec.") and name[:1].isupper()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a Whoosh index file asks for {module}.{name}, which videoqa refuses to load; "
                                     "run videoqa index --repair to rebuild the keyword index from the catalog")


def _safe_load(file: Any) -> Any:
    return _WhooshUnpickler(file).load()


def _safe_loads(data: bytes) -> Any:
    return _WhooshUnpickler(io.BytesIO(data)).load()


_GUARDED = False


def _guard_whoosh() -> None:
    """Route Whoosh's reading of its pickles through :class:`_WhooshUnpickler` (once per process)."""
    global _GUARDED
    if _GUARDED:
        return
    import whoosh.codec.whoosh3
    import whoosh.columns
    import whoosh.filedb.structfile
    import whoosh.formats

    whoosh.filedb.structfile.load_pickle = _safe_load
    for module in (whoosh.codec.whoosh3, whoosh.columns, whoosh.formats):
        module.loads = _safe_loads
    _GUARDED = True


def _whoosh_schema():
    from whoosh.fields import ID, STORED, TEXT, Schema

    an = analyzer()
    return Schema(
        key=ID(unique=True, stored=True),
        doc_type=ID(stored=True),
        video=ID(stored=True),
        moment=STORED(),
        title=TEXT(analyzer=an),
        body=TEXT(analyzer=an),
        text=TEXT(analyzer=an),
    )


class WhooshKeywordStore(KeywordStore):
    """The keyword index in Whoosh (``whoosh/``)."""

    DIRNAME = "whoosh"
    engine = "whoosh"

    def __init__(self, index_dir: Path):
        super().__init__(index_dir)
        self._ix = None
        self._local = threading.local()  # a searcher per thread, reused until the index changes

    @property
    def index(self):
        from whoosh import index as windex

        _guard_whoosh()
        with self._lock:
            if self._ix is None:
                if self.exists():
                    self._ix = self._open_dir()
                else:
                    self.dir.mkdir(parents=True, exist_ok=True)
                    self._ix = windex.create_in(str(self.dir), _whoosh_schema())
            return self._ix

    def _open_dir(self) -> Any:
        """Open the index, retrying briefly: a writer replacing its TOC file makes an open miss it for a moment."""
        import time

        from whoosh import index as windex

        for attempt in range(10):
            try:
                return windex.open_dir(str(self.dir), schema=_whoosh_schema())
            except (FileNotFoundError, windex.EmptyIndexError):
                if attempt == 9:
                    raise
                time.sleep(0.05)

    def exists(self) -> bool:
        # (whoosh.index.exists_in would open the index without our schema: unpickling the stored one)
        return self.dir.is_dir() and any(self.dir.glob("_MAIN_*.toc"))

    def refresh(self) -> None:
        with self._lock:
            self._ix = None
        self._local = threading.local()

    @staticmethod
    def _docs(video: Video, moments: Sequence[Moment]) -> Iterable[dict[str, Any]]:
        yield {"key": f"v{video.id}", "doc_type": "video", "video": str(video.id), "title": _title(video),
               "body": "\n".join(m.text for m in moments)}
        for m in moments:
            yield {"key": f"m{m.id}", "doc_type": "moment", "video": str(video.id), "moment": m.id, "text": m.text}

    def update(self, add: Sequence[tuple[Video, Sequence[Moment]]], remove_videos: Iterable[int] = ()) -> None:
        writer = self.index.writer(timeout=60.0)
        try:
            for vid in remove_videos:
                writer.delete_by_term("video", str(vid))
            for video, moments in add:
                writer.delete_by_term("video", str(video.id))
                for doc in self._docs(video, moments):
                    writer.add_document(**doc)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        self.refresh()

    def _build(self, folder: Path, catalog: Catalog) -> None:
        from whoosh import index as windex

        writer = windex.create_in(str(folder), _whoosh_schema()).writer()
        for video in catalog.videos():
            for doc in self._docs(video, catalog.moments_of(video.id)):
                writer.add_document(**doc)
        writer.commit()

    def _searcher(self, scorer: str):
        from whoosh import scoring

        ix = self.index
        cached = getattr(self._local, "searchers", None)
        if cached is None or cached[0] is not ix:
            cached = (ix, {})
            self._local.searchers = cached
        if scorer not in cached[1]:
            cached[1][scorer] = ix.searcher(weighting=scoring.BM25F() if scorer == "bm25f" else scoring.TF_IDF())
        return cached[1][scorer]

    def search(self, terms: Sequence[str], fields: Sequence[str], limit: int,
               scorer: str = "tfidf") -> list[tuple[int, int | None, float]]:
        from whoosh.query import Or, Term

        if not terms or not self.exists():
            return []
        results = self._searcher(scorer).search(Or([Term(f, t) for f in fields for t in terms]), limit=limit)
        return [(int(hit["video"]), hit.get("moment"), float(hit.score)) for hit in results]

    def idf(self, terms: Sequence[str], field: str, scorer: str = "tfidf") -> dict[str, float]:
        if not terms or not self.exists():
            return {}
        searcher = self._searcher(scorer)
        return {t: float(searcher.idf(field, t)) for t in terms}  # TF_IDF and BM25F weigh by the same idf

    def doc_keys(self) -> set[str]:
        if not self.exists():
            return set()
        with self.index.searcher() as s:
            return {fields["key"] for fields in s.all_stored_fields()}


class TantivyKeywordStore(KeywordStore):
    """The keyword index in Tantivy (``tantivy/``), holding the analyzer's terms."""

    DIRNAME = "tantivy"
    engine = "tantivy"
    _WRITER_HEAP = 64 << 20

    def __init__(self, index_dir: Path):
        super().__init__(index_dir)
        self._ix = None

    @staticmethod
    def _schema():
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("video", stored=True, indexed=True)
        sb.add_integer_field("moment", stored=True, indexed=True)  # 0: a video document
        for name in ("title", "body", "text"):
            sb.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
        return sb.build()

    @property
    def index(self):
        import tantivy

        with self._lock:
            if self._ix is None:
                if not self.exists():
                    self.dir.mkdir(parents=True, exist_ok=True)
                self._ix = tantivy.Index(self._schema(), path=str(self.dir))
            return self._ix

    def exists(self) -> bool:
        return (self.dir / "meta.json").is_file()

    def refresh(self) -> None:
        with self._lock:
            self._ix = None

    @staticmethod
    def _docs(video: Video, moments: Sequence[Moment]) -> Iterable[Any]:
        import tantivy

        yield tantivy.Document(video=video.id, moment=0, title=analyzed(_title(video)),
                               body=analyzed("\n".join(m.text for m in moments)))
        for m in moments:
            yield tantivy.Document(video=video.id, moment=m.id, text=analyzed(m.text))

    def _write(self, ix: Any, add: Sequence[tuple[Video, Sequence[Moment]]], remove_videos: Iterable[int]) -> None:
        writer = ix.writer(heap_size=self._WRITER_HEAP, num_threads=1)
        try:
            for vid in list(remove_videos) + [video.id for video, _ in add]:
                writer.delete_documents_by_term("video", vid)
            for video, moments in add:
                for doc in self._docs(video, moments):
                    writer.add_document(doc)
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            writer.rollback()
            raise

    def update(self, add: Sequence[tuple[Video, Sequence[Moment]]], remove_videos: Iterable[int] = ()) -> None:
        self._write(self.index, add, remove_videos)
        self.refresh()

    def _build(self, folder: Path, catalog: Catalog) -> None:
        import tantivy

        ix = tantivy.Index(self._schema(), path=str(folder))
        writer = ix.writer(heap_size=4 * self._WRITER_HEAP, num_threads=1)
        for video in catalog.videos():
            for doc in self._docs(video, catalog.moments_of(video.id)):
                writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()

    def search(self, terms: Sequence[str], fields: Sequence[str], limit: int,
               scorer: str = "tfidf") -> list[tuple[int, int | None, float]]:
        import tantivy

        if not terms or not self.exists():
            return []
        ix = self.index
        schema = ix.schema
        query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, f, t))
                                             for f in fields for t in terms])
        searcher = ix.searcher()
        out = []
        for score, address in searcher.search(query, limit).hits:
            doc = searcher.doc(address)
            moment = doc["moment"][0]
            out.append((int(doc["video"][0]), int(moment) or None, float(score)))
        return out

    def idf(self, terms: Sequence[str], field: str, scorer: str = "tfidf") -> dict[str, float]:
        if not terms or not self.exists():
            return {}
        searcher = self.index.searcher()
        n = searcher.num_docs
        # Tantivy's BM25 idf: ln(1 + (N - df + 0.5) / (df + 0.5))
        return {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t in terms
                for df in (searcher.doc_freq(field, t),)}

    def doc_keys(self) -> set[str]:
        import tantivy

        if not self.exists():
            return set()
        searcher = self.index.searcher()
        n = searcher.num_docs
        if n == 0:
            return set()
        keys = set()
        for _, address in searcher.search(tantivy.Query.all_query(), n).hits:
            doc = searcher.doc(address)
            keys.add(f"m{doc['moment'][0]}" if doc["moment"][0] else f"v{doc['video'][0]}")
        return keys


KEYWORD_STORES: dict[str, type[KeywordStore]] = {"whoosh": WhooshKeywordStore, "tantivy": TantivyKeywordStore}


# -- vectors -------------------------------------------------------------------------------

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


# -- both, kept in step with the catalog ---------------------------------------------------

class DerivedIndexes:
    """The keyword (Whoosh or Tantivy) and FAISS files of an index directory and the generation they reflect."""

    STATE = "derived.json"

    def __init__(self, catalog: Catalog, vector_options: VectorIndexOptions = VectorIndexOptions(),
                 keyword_options: KeywordOptions = KeywordOptions()):
        self.catalog = catalog
        self.vector_options = vector_options
        self.keyword_options = keyword_options
        self.dir = catalog.index_dir
        engine = self._state().get("keywords", "whoosh")
        self.keywords: KeywordStore = KEYWORD_STORES.get(engine, WhooshKeywordStore)(self.dir)
        self.vectors: dict[str, VectorStore] = {}
        self._stale = False  # an update failed: never claim to be current until rebuilt
        # Applied in memory, not yet on disk (see flush): keyword documents, removed videos,
        # vector spaces changed; and what the last flush cost, for maybe_flush.
        self._pending_add: list[tuple[Video, Sequence[Moment]]] = []
        self._pending_remove: set[int] = set()
        self._dirty: set[str] = set()
        self._last_flush = (0.0, 0.0)  # (when, seconds it took)

    def spaces(self) -> list[str]:
        return sorted(self.catalog.manifest().get("spaces", {}))

    def vector_store(self, space: str) -> VectorStore:
        if space not in self.vectors:
            self.vectors[space] = VectorStore(self.dir, space, self.vector_options).load()
        return self.vectors[space]

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / self.STATE).read_text())
        except (OSError, ValueError):
            return {}

    def is_current(self) -> bool:
        """The keyword and FAISS files reflect the catalog as it is, with this version's analyzer."""
        state = self._state()
        if state.get("generation") != self.catalog.generation or state.get("analyzer") != ANALYZER_VERSION:
            return False
        if self.catalog.count_videos() and not self.keywords.exists():
            return False
        return all(VectorStore(self.dir, s).path.exists() or not self.catalog.count_vectors(s)
                   for s in self.spaces())

    def loads(self) -> bool:
        """Every derived file opens (a damaged one, e.g. written over from outside, does not)."""
        try:
            if self.keywords.exists():
                self.keywords.index  # noqa: B018 - opens it
            for space in self.spaces():
                self.vector_store(space)
        except Exception as exc:  # noqa: BLE001 - any engine's read error means: rebuild from the catalog
            log.warning("%s: a derived index does not open (%s); it will be rebuilt from the catalog", self.dir,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.vectors.clear()
            self.keywords.refresh()
            return False
        return True

    def usable(self) -> bool:
        """Current and every file opens: safe to search without a rebuild."""
        return self.is_current() and self.loads()

    def clean_leftovers(self) -> None:
        """Delete temporary files a killed writer left behind (call with the writer lock held)."""
        for leftover in self.dir.glob(".faiss-*.index.tmp*"):
            leftover.unlink(missing_ok=True)
        for name in KEYWORD_STORES:
            for suffix in (".new", ".old"):
                shutil.rmtree(self.dir / (KEYWORD_STORES[name].DIRNAME + suffix), ignore_errors=True)

    def mark_current(self, generation: int | None = None) -> None:
        if self._stale:
            return
        state = {"generation": self.catalog.generation if generation is None else generation,
                 "analyzer": ANALYZER_VERSION, "keywords": self.keywords.engine}
        _atomic_write_text(self.dir / self.STATE, json.dumps(state) + "\n")

    def _wanted_engine(self) -> str:
        return self.keyword_options.wanted(self.catalog.count_moments(), self.keywords.engine)

    def apply(self, video: Video, moments: Sequence[Moment], vectors: dict[str, tuple[Sequence[int], np.ndarray]],
              replaced_videos: Iterable[int] = (), replaced_vectors: dict[str, list[int]] | None = None,
              *, flush: bool = True) -> None:
        """Add one newly committed video (and drop what it replaced); then record the generation.

        With ``flush=False`` the change is made in memory only, and written with the next
        :meth:`flush` (or :meth:`maybe_flush`): at a million moments, saving the FAISS files
        and committing the keyword index take about a second, which a writer cannot pay per
        video. Until then ``derived.json`` keeps the older generation, so a crash leaves
        indexes that are rebuilt from the catalog, never ones that claim to be current.
        """
        try:
            for space, ids in (replaced_vectors or {}).items():
                self.vector_store(space).remove(ids)
                self._dirty.add(space)
            for space, (ids, matrix) in vectors.items():
                self.vector_store(space).add(ids, matrix)
                self._dirty.add(space)
            gone = set(replaced_videos) | {video.id}
            self._pending_add = [(v, m) for v, m in self._pending_add if v.id not in gone]
            self._pending_remove |= set(replaced_videos)
            self._pending_add.append((video, moments))
        except BaseException:
            self._stale = True
            raise
        if flush:
            self.flush()

    @property
    def pending(self) -> bool:
        """Changes applied in memory and not yet written."""
        return bool(self._pending_add or self._pending_remove or self._dirty)

    def maybe_flush(self, share: float = 0.1) -> bool:
        """Flush when the time since the last flush is at least 1/``share`` of what the last one
        took: writing stays about ``share`` of the writer's time whatever the index's size (a
        small index is written after every video, a large one every several seconds)."""
        when, took = self._last_flush
        if self.pending and time.monotonic() - when >= took / share:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Write what :meth:`apply` changed, moving to another kind of index where the size asks
        for it (flat FAISS past ``ivf_above``, Whoosh past ``tantivy_above``); then record the
        catalog's generation as the one these files reflect."""
        if not self.pending:
            return
        t0 = time.monotonic()
        try:
            for space in sorted(self._dirty):
                store = self.vector_store(space)
                if store.needs_rebuild():  # grown past the flat limit, or past its IVF lists
                    store.rebuild(self.catalog)
                else:
                    store.save()
            if self._wanted_engine() != self.keywords.engine:
                self.rebuild_keywords()
            else:
                self.keywords.update(self._pending_add, remove_videos=sorted(self._pending_remove))
        except BaseException:
            self._stale = True
            raise
        self._clear_pending()
        self.mark_current()
        self._last_flush = (time.monotonic(), time.monotonic() - t0)

    def _clear_pending(self) -> None:
        self._pending_add, self._pending_remove, self._dirty = [], set(), set()

    def remove(self, video_id: int, vectors: dict[str, list[int]]) -> None:
        """Drop a video the catalog no longer has."""
        for space, ids in vectors.items():
            store = self.vector_store(space)
            store.remove(ids)
            store.save()
        self.keywords.update([], remove_videos=[video_id])
        self.mark_current()

    def rebuild(self) -> None:
        log.info("rebuilding the keyword and vector indexes of %s from its catalog", self.dir)
        generation = self.catalog.generation
        self._stale = False
        self._clear_pending()  # the rebuild reads everything from the catalog
        self.clean_leftovers()
        self.rebuild_keywords()
        self.rebuild_vectors()
        self.mark_current(generation)

    def rebuild_keywords(self) -> None:
        """Make the keyword index again from the catalog, in the engine the options want."""
        engine = self._wanted_engine()
        store = KEYWORD_STORES[engine](self.dir)
        store.rebuild(self.catalog)
        for other, cls in KEYWORD_STORES.items():
            if other != engine:
                cls(self.dir).remove_files()
        self.keywords.close()
        self.keywords = store

    def rebuild_vectors(self) -> None:
        """Make the FAISS files again from the catalog's vectors (the kind the options want)."""
        for space in self.spaces():
            store = VectorStore(self.dir, space, self.vector_options)
            store.rebuild(self.catalog)
            self.vectors[space] = store
