"""The keyword index: Whoosh or Tantivy, chosen by size, one document per video and one per moment.

Both engines index the terms of :mod:`indexer.analysis`, so switching engine changes speed,
not what a query matches. :class:`KeywordOptions` says which engine an index of a given size
wants; :class:`indexer.derived.DerivedIndexes` moves the index when that changes. Whoosh's
pickled files are read through an allow-list (see :func:`_guard_whoosh`).
"""

from __future__ import annotations

import io
import math
import os
import pickle  # only the allow-list unpickler of Whoosh's files below
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from indexer.analysis import analyzed, analyzer
from indexer.catalog import Catalog
from indexer.schema import Moment, Video
from models.errors import ConfigError

__all__ = ["KEYWORD_ENGINES", "KeywordOptions", "KeywordStore", "WhooshKeywordStore", "TantivyKeywordStore",
           "KEYWORD_STORES"]

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
