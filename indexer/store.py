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
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from indexer.catalog import Catalog
from indexer.schema import SCHEMA_VERSION, Moment, Video
from models.errors import IndexLockedError, IndexMismatchError

__all__ = [
    "writer_lock", "KeywordStore", "VectorStore", "DerivedIndexes", "check_manifest", "write_manifest",
    "STOP_WORDS", "ANALYZER_VERSION",
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

# Whoosh's English stop words plus the question and function words that questions are
# made of: "what is love" must not match every transcript that says "what".
STOP_WORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being below between both
but by can could did do does doing done during each few for from further had has have having he her here
hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or
other our ours out over own please same she should so some such tbd tell than that the their theirs them
then there these they this those through to too under until up us very was we were what when where which
while who whom why will with would yet you your yours
""".split())


# Bump when the analyzer changes: derived indexes made with another are rebuilt.
ANALYZER_VERSION = "stem-stop-1"


def _analyzer():
    from whoosh.analysis import StemmingAnalyzer

    return StemmingAnalyzer(stoplist=STOP_WORDS, minsize=1)


def _schema():
    from whoosh.fields import ID, STORED, TEXT, Schema

    analyzer = _analyzer()
    return Schema(
        key=ID(unique=True, stored=True),
        doc_type=ID(stored=True),
        video=ID(stored=True),
        moment=STORED(),
        title=TEXT(analyzer=analyzer),
        text=TEXT(analyzer=analyzer),
    )


class KeywordStore:
    """The Whoosh index: a document per video (title and all its text) and per moment."""

    DIRNAME = "whoosh"

    def __init__(self, index_dir: Path):
        self.dir = Path(index_dir) / self.DIRNAME
        self._ix = None
        self._lock = threading.Lock()

    @property
    def analyzer(self):
        return self.index.schema["text"].analyzer

    @property
    def index(self):
        from whoosh import index as windex

        with self._lock:
            if self._ix is None:
                if windex.exists_in(str(self.dir)):
                    self._ix = windex.open_dir(str(self.dir))
                else:
                    self.dir.mkdir(parents=True, exist_ok=True)
                    self._ix = windex.create_in(str(self.dir), _schema())
            return self._ix

    def exists(self) -> bool:
        from whoosh import index as windex

        return windex.exists_in(str(self.dir))

    def refresh(self) -> None:
        """See documents committed by another process."""
        with self._lock:
            self._ix = None

    @staticmethod
    def _docs(video: Video, moments: Sequence[Moment]) -> Iterable[dict[str, Any]]:
        title = Path(video.name).stem.replace("_", " ").replace("-", " ")
        yield {"key": f"v{video.id}", "doc_type": "video", "video": str(video.id), "title": title,
               "text": "\n".join(m.text for m in moments)}
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

    def rebuild(self, catalog: Catalog) -> None:
        """Write a fresh index from the catalog next to the old one, then swap them."""
        from whoosh import index as windex

        tmp = self.dir.with_name(self.DIRNAME + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ix = windex.create_in(str(tmp), _schema())
        writer = ix.writer()
        for video in catalog.videos():
            for doc in self._docs(video, catalog.moments_of(video.id)):
                writer.add_document(**doc)
        writer.commit()
        old = self.dir.with_name(self.DIRNAME + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        self.refresh()


# -- vectors -------------------------------------------------------------------------------

class VectorStore:
    """One FAISS inner-product index per vector space; ids are the catalog's owner ids."""

    def __init__(self, index_dir: Path, space: str):
        self.space = space
        self.path = Path(index_dir) / f"faiss-{space}.index"
        self.index = None

    def load(self) -> "VectorStore":
        import faiss

        self.index = faiss.read_index(str(self.path)) if self.path.exists() else None
        return self

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

    def rebuild(self, catalog: Catalog) -> None:
        ids, matrix = catalog.vectors(self.space)
        self.index = None
        self.add(ids, matrix)
        self.save()

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) of the ``k`` nearest vectors, best first."""
        if self.index is None or self.index.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(k, int(self.index.ntotal))
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]


# -- both, kept in step with the catalog ---------------------------------------------------

class DerivedIndexes:
    """The Whoosh and FAISS files of an index directory and the generation they reflect."""

    STATE = "derived.json"

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.dir = catalog.index_dir
        self.keywords = KeywordStore(self.dir)
        self.vectors: dict[str, VectorStore] = {}
        self._stale = False  # an update failed: never claim to be current until rebuilt

    def spaces(self) -> list[str]:
        return sorted(self.catalog.manifest().get("spaces", {}))

    def vector_store(self, space: str) -> VectorStore:
        if space not in self.vectors:
            self.vectors[space] = VectorStore(self.dir, space).load()
        return self.vectors[space]

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / self.STATE).read_text())
        except (OSError, ValueError):
            return {}

    def is_current(self) -> bool:
        """The Whoosh and FAISS files reflect the catalog as it is, with this version's analyzer."""
        state = self._state()
        if state.get("generation") != self.catalog.generation or state.get("analyzer") != ANALYZER_VERSION:
            return False
        if self.catalog.count_videos() and not self.keywords.exists():
            return False
        return all(VectorStore(self.dir, s).path.exists() or not self.catalog.count_vectors(s)
                   for s in self.spaces())

    def mark_current(self, generation: int | None = None) -> None:
        if self._stale:
            return
        state = {"generation": self.catalog.generation if generation is None else generation,
                 "analyzer": ANALYZER_VERSION}
        _atomic_write_text(self.dir / self.STATE, json.dumps(state) + "\n")

    def apply(self, video: Video, moments: Sequence[Moment], vectors: dict[str, tuple[Sequence[int], np.ndarray]],
              replaced_videos: Iterable[int] = (), replaced_vectors: dict[str, list[int]] | None = None) -> None:
        """Add one newly committed video (and drop what it replaced); then record the generation."""
        try:
            for space, ids in (replaced_vectors or {}).items():
                self.vector_store(space).remove(ids)
            for space, (ids, matrix) in vectors.items():
                self.vector_store(space).add(ids, matrix)
            for space in set(vectors) | set(replaced_vectors or {}):
                self.vector_store(space).save()
            self.keywords.update([(video, moments)], remove_videos=replaced_videos)
        except BaseException:
            self._stale = True
            raise
        self.mark_current()

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
        self.keywords.rebuild(self.catalog)
        for space in self.spaces():
            store = VectorStore(self.dir, space)
            store.rebuild(self.catalog)
            self.vectors[space] = store
        self.mark_current(generation)
