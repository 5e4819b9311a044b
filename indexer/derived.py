"""The derived indexes (keywords and vectors) kept in step with the catalog.

Layout of an index directory::

    catalog.sqlite3     source of truth (indexer.catalog)
    manifest.json       how the index was built: schema, models, vector dimensions (indexer.manifest)
    derived.json        the catalog generation the files below reflect
    whoosh/ or tantivy/ one document per video and one per moment (indexer.keyword_index)
    faiss-<space>.index one inner-product index per vector space (indexer.vector_index)
    writer.lock         held by the one writer (indexer.locks)

Only the writer (holding :func:`indexer.locks.writer_lock`) changes these files: it applies
each committed video, and when ``derived.json`` does not match the catalog (a crash between
the catalog commit and the derived update, or files deleted by hand) it makes them again
from the catalog (:meth:`DerivedIndexes.make_usable`, :meth:`DerivedIndexes.rebuild`); no
model runs for that. A reader only asks whether they are current and opens them.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from indexer.analysis import ANALYZER_VERSION
from indexer.catalog import Catalog
from indexer.keyword_index import KEYWORD_STORES, KeywordOptions, KeywordStore, WhooshKeywordStore
from indexer.manifest import atomic_write_text
from indexer.schema import Moment, Video
from indexer.vector_index import VectorIndexOptions, VectorStore

__all__ = ["DerivedIndexes"]

log = logging.getLogger(__name__)


class DerivedIndexes:
    """The keyword (Whoosh or Tantivy) and FAISS files of an index directory and the generation they reflect.

    Readers use :meth:`is_current`, :meth:`loads`, :meth:`vector_store` and :attr:`keywords`;
    everything that writes (:meth:`apply`, :meth:`flush`, :meth:`remove`, :meth:`make_usable`,
    :meth:`rebuild`) is the writer's, with the writer lock held.
    """

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
        self.open_error = ""  # why the last loads() failed
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

    @classmethod
    def state_text(cls, index_dir: Path) -> str:
        """``derived.json`` as written (empty when there is none): changes whenever the writer
        records another generation or rebuilds, so a reader can tell when to open the files again."""
        try:
            return (index_dir / cls.STATE).read_text()
        except OSError:
            return ""

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_text(self.dir))
        except ValueError:
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

    def has_files(self) -> bool:
        """Any keyword or vector file is on disk (a library whose derived files were all lost has none)."""
        return self.keywords.exists() or any(VectorStore(self.dir, s).path.exists() for s in self.spaces())

    def loads(self) -> bool:
        """Every derived file on disk opens (a damaged one, e.g. written over from outside, does
        not; :attr:`open_error` then says why). Reading only: nothing is written."""
        self.open_error = ""
        try:
            if self.keywords.exists():
                self.keywords.index  # noqa: B018 - opens it
            for space in self.spaces():
                self.vector_store(space)
        except Exception as exc:  # noqa: BLE001 - any engine's read error means: rebuild from the catalog
            self.open_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.debug("%s: a derived index does not open (%s)", self.dir, self.open_error)
            self.vectors.clear()
            self.keywords.refresh()
            return False
        return True

    def usable(self) -> bool:
        """Current and every file opens: safe to search without a rebuild."""
        if not self.is_current():
            return False
        if not self.loads():
            log.warning("%s: a derived index does not open (%s)", self.dir, self.open_error)
            return False
        return True

    def make_usable(self, repair: bool = False) -> bool:
        """The writer's check when it takes the lock (call with it held): delete what a killed
        writer left behind, and rebuild from the catalog when the files are not usable (or
        ``repair`` asks for it). A new, empty index is just marked current. Returns whether it
        rebuilt. Usable files in another kind or encoding than the options now want (a changed
        ``vector_index`` or ``vector_encoding``) are made again from the catalog too
        (:meth:`refit_vectors`), without counting as a rebuild."""
        self.clean_leftovers()
        if not repair and self.usable():
            self.refit_vectors()
            return False
        if not repair and not self.catalog.count_videos():
            self.mark_current()
            return False
        self.rebuild()
        return True

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
        atomic_write_text(self.dir / self.STATE, json.dumps(state) + "\n")

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

    def refit_vectors(self) -> list[str]:
        """Make again from the catalog each FAISS file whose kind or encoding is not the one the
        options want for its size (call with the writer lock held, the files current); returns
        those spaces."""
        refit = [space for space in self.spaces() if self.vector_store(space).needs_rebuild()]
        for space in refit:
            store = self.vector_store(space)
            log.info("%s: the %s vectors are in a %s %s index; making it again from the catalog as the settings ask",
                     self.dir, space, store.kind, store.encoding)
            store.rebuild(self.catalog)
        if refit:
            self.mark_current()
        return refit

    def rebuild_vectors(self) -> None:
        """Make the FAISS files again from the catalog's vectors (the kind the options want)."""
        for space in self.spaces():
            store = VectorStore(self.dir, space, self.vector_options)
            store.rebuild(self.catalog)
            self.vectors[space] = store
