"""The retrieval API: a question in, videos and the moments that earned their score out.

>>> from retriever import Retriever
>>> r = Retriever("/path/to/index", hub)            # hub: models.ModelHub
>>> for hit in r.search("what you can do for your country", top_k=3):
...     print(hit.name, round(hit.score, 2), hit.moments[0].cite())

Channels: ``keyword`` (Whoosh or Tantivy over transcripts, titles and descriptions),
``semantic`` (text vectors of moments) and, when a frame embedder is loaded, ``visual``
(CLIP vectors of keyframes). Each is normalised to [0, 1] per query and fused per video
(:func:`retriever.fusion.fuse`).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.catalog import Catalog
from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Moment, format_span
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.manifest import check_manifest
from indexer.vector_index import VectorIndexOptions
from models.errors import IndexMismatchError, VideoQAError
from models.hub import ModelHub
from retriever.fusion import fuse
from retriever.keyword import KeywordSearcher, matched_spans

__all__ = ["DEFAULT_WEIGHTS", "RetrievalOptions", "ScoredMoment", "Hit", "Retriever", "NoIndexError",
           "IndexNeedsRepairError", "clean_query"]

log = logging.getLogger(__name__)

CHANNELS = ("keyword", "semantic")
# Channel weights in fusion. The keyword channel's 0.3 was chosen on the tune split of the
# evaluation sets (benchmarks/eval/tune_fusion.py; docs/EVALUATION.md): with keyword scores
# normalised against what the question could score, 0.1-0.3 tie there, 0.5 and more let keyword
# matches on a few words outrank the meaning of paraphrases.
DEFAULT_WEIGHTS = {"keyword": 0.3, "semantic": 1.0, "visual": 1.0}
OPEN_ATTEMPTS = 20  # opening the derived indexes while an indexer replaces them (0.1 s apart)


class NoIndexError(VideoQAError):
    """There is no index at the given directory yet."""


class IndexNeedsRepairError(NoIndexError):
    """The catalog has videos but its keyword and vector indexes cannot be searched (missing, or
    a file does not open). A search never rebuilds them: ``videoqa index --repair`` does."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_query(text: str | None) -> str:
    """A query as search and answering take it: control characters (NUL, escapes, tabs,
    newlines) become spaces, lone surrogates (undecodable bytes of a command line, or
    ``\\ud800`` sent as JSON) become U+FFFD, and the ends are stripped. Anything else, query
    syntax included, is kept as it is: it is never parsed."""
    text = _SURROGATE.sub("\ufffd", text or "")
    return _CONTROL.sub(" ", text).strip()


@dataclass(frozen=True)
class RetrievalOptions:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    fusion: str = "sum"  # sum | rrf
    rrf_k: int = 60
    scorer: str = "tfidf"  # tfidf | bm25f
    keyword_norm: str = "query"  # query | top (retriever.keyword.KEYWORD_NORMS)
    candidates: int = 200  # results taken from each channel before fusion
    semantic_floor: float = 0.2  # cosines at or below count as no match; above, rescaled to (0, 1]
    # Text-vector scores of on-screen-text moments are multiplied by this: a title of three words on
    # screen for a whole video is, for a sentence embedder, close to many questions (docs/EVALUATION.md).
    screen_semantic_weight: float = 1.0
    # The keyword weight when choosing a video's moments (None: as for ranking videos). Lower than for
    # videos: a sentence sharing the question's words should not win over the one that means it.
    moment_keyword_weight: float | None = None
    visual_floor: float = 0.15  # CLIP text-image cosines: at or below, no match
    visual_ceiling: float = 0.35  # and this counts as a full match
    moments_per_hit: int = 3
    context_gap: float = 3.0  # a neighbouring sentence at most this many seconds away is context
    keyframes_per_hit: int = 8
    vector_index: VectorIndexOptions = VectorIndexOptions()  # how the derived files are read (nprobe)
    keyword_index: KeywordOptions = KeywordOptions()


@dataclass
class ScoredMoment:
    """A moment of a hit with its fused score and per-channel scores."""

    start: float
    end: float
    kind: str
    text: str
    score: float
    channels: dict[str, float]
    id: int | None = None
    language: str | None = None
    keyframe_id: int | None = None  # for kinds "keyframe" and "screen": its thumbnail
    # The sentences just before and after (same video and kind), for display and answering;
    # they are not part of the cited span.
    context: list[Moment] = field(default_factory=list)

    def cite(self) -> str:
        return format_span(self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "kind": self.kind, "text": self.text,
                "score": round(self.score, 6), "channels": {k: round(v, 6) for k, v in self.channels.items()},
                "id": self.id, "language": self.language,
                **({"keyframe_id": self.keyframe_id} if self.keyframe_id is not None else {}),
                **({"context": [{"start": round(c.start, 3), "end": round(c.end, 3), "text": c.text}
                                for c in self.context]} if self.context else {})}


@dataclass
class Hit:
    """A video found for a query."""

    video_id: int
    video: str  # path of the file when it was indexed
    name: str
    score: float
    channels: dict[str, float]
    moments: list[ScoredMoment]
    duration: float = 0.0
    keyframes: list[dict[str, Any]] = field(default_factory=list)  # {"id", "t"}

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "video_id": self.video_id, "score": round(self.score, 6),
                "channels": {k: round(v, 6) for k, v in self.channels.items()}, "duration": self.duration,
                "moments": [m.to_dict() for m in self.moments], "keyframes": self.keyframes}


class Retriever:
    """Searches one index directory. Thread-safe; picks up what an indexer commits meanwhile.

    A reader only: it never takes the writer lock and never writes a file. When the keyword
    and vector indexes are behind the catalog (an indexer is writing, or one died before
    bringing them up to date) it searches what they hold, logs it and sets :attr:`stale`;
    when there is nothing it can search it raises :class:`IndexNeedsRepairError`.
    """

    def __init__(self, index_dir: str | Path, hub: ModelHub, options: RetrievalOptions = RetrievalOptions()):
        self.index_dir = Path(index_dir)
        self.hub = hub
        self.options = options
        self._lock = threading.RLock()
        self._catalog: Catalog | None = None
        self._derived: DerivedIndexes | None = None
        self._seen: tuple[int, str] | None = None  # (catalog generation, derived.json) the open files belong to
        self._warned = False
        self.stale = False
        """True when the last search ran on keyword and vector indexes behind the catalog: videos
        indexed since they were written are not found (the indexer, or ``videoqa index --repair``,
        brings them up to date)."""

    # -- opening and refreshing --------------------------------------------------------
    def _open(self) -> tuple[Catalog, DerivedIndexes]:
        with self._lock:
            if self._catalog is None:
                if not (self.index_dir / Catalog.FILENAME).exists():
                    raise NoIndexError(f"no index in {self.index_dir}; run: videoqa index PATH --index-dir "
                                       f"{self.index_dir}")
                self._catalog = self._open_catalog()
                spaces = {}
                for space, model in ((TEXT_SPACE, self.hub.text_embedder), (IMAGE_SPACE, self.hub.frame_embedder)):
                    if model is not None:
                        spaces[space] = {"model": model.model_name}
                check_manifest(self._catalog, {"spaces": spaces})
            seen = (self._catalog.generation, DerivedIndexes.state_text(self.index_dir))
            if self._derived is None or seen != self._seen:
                self._derived = self._load_derived()
                self._seen = seen
            return self._catalog, self._derived

    def _load_derived(self) -> DerivedIndexes:
        """The derived indexes as they are on disk, opened. An indexer that replaces a file just as
        it is opened (Whoosh's table of contents, a merged segment, a rebuilt folder) makes the
        open fail, so a failed open is tried again, with what is on disk then, for up to ~2 s."""
        assert self._catalog is not None
        problem = ""
        for attempt in range(OPEN_ATTEMPTS):
            if attempt:
                time.sleep(0.1)
            derived = DerivedIndexes(self._catalog, self.options.vector_index, self.options.keyword_index)
            current = derived.is_current()
            if not derived.loads():
                problem = f"the keyword or vector index does not open ({derived.open_error})"
            elif not current and self._catalog.count_videos() and not derived.has_files():
                problem = (f"the catalog has {self._catalog.count_videos()} videos but there is no keyword or "
                           "vector index")
            else:
                self._note_stale(not current)
                return derived
        raise IndexNeedsRepairError(f"{self.index_dir}: {problem}; if an indexer is running, search again when it "
                                    f"has finished, otherwise run: videoqa index --repair --index-dir {self.index_dir}")

    def _note_stale(self, stale: bool) -> None:
        if stale and not self.stale:
            # A warning the first time only: while an indexer runs they fall behind after every commit.
            log.log(logging.DEBUG if self._warned else logging.WARNING,
                    "the keyword and vector indexes of %s are behind its catalog (an indexer is writing, or one "
                    "stopped early); searching what they hold until the indexer brings them up to date "
                    "(videoqa index, or videoqa index --repair)", self.index_dir)
            self._warned = True
        self.stale = stale

    def _open_catalog(self) -> Catalog:
        """The catalog, read-only; one that an indexer is creating this moment (its tables or
        first rows not committed yet) is no index yet, not an SQLite error."""
        catalog = None
        try:
            catalog = Catalog(self.index_dir, readonly=True)
            if catalog.get_meta("schema_version") is not None:
                return catalog
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
        if catalog is not None:
            catalog.close()
        raise NoIndexError(f"the index in {self.index_dir} is not ready yet (an indexer is creating it); "
                           "search again in a moment")

    def close(self) -> None:
        with self._lock:
            if self._catalog is not None:
                self._catalog.close()
            self._catalog = self._derived = None
            self._seen = None

    @property
    def catalog(self) -> Catalog:
        return self._open()[0]

    def matched_spans(self, query: str, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text`` that match the words of ``query`` (for highlighting)."""
        return matched_spans(self._open()[1].keywords, clean_query(query), text)

    # -- channels ----------------------------------------------------------------------
    def _vector_channel(self, derived: DerivedIndexes, space: str, qvec: Any, floor: float,
                        ceiling: float) -> dict[int, float]:
        """{owner id: score in (0, 1]}: cosines rescaled from [floor, ceiling], none at or below the floor."""
        store = derived.vector_store(space)
        if store.ntotal == 0:
            return {}
        if store.dim != qvec.shape[0]:
            raise IndexMismatchError(f"{store.path}: {store.dim}-d vectors, the query gives {qvec.shape[0]}")
        # a quantized index's candidates are scored with the catalog's exact vectors
        ids, cos = store.search(qvec, self.options.candidates,
                                exact=lambda found: derived.catalog.vectors_of(space, found))
        span = max(ceiling - floor, 1e-6)
        return {int(i): min(1.0, (float(c) - floor) / span) for i, c in zip(ids, cos) if c > floor}

    def _semantic(self, derived: DerivedIndexes, query: str) -> dict[int, float]:
        embedder = self.hub.text_embedder
        if embedder is None or self.options.weights.get("semantic", 1.0) == 0:
            return {}
        if derived.vector_store(TEXT_SPACE).ntotal == 0:
            return {}
        return self._vector_channel(derived, TEXT_SPACE, embedder.embed_query(query), self.options.semantic_floor,
                                    1.0)

    def _visual(self, derived: DerivedIndexes, query: str) -> dict[int, float]:
        embedder = self.hub.frame_embedder
        if embedder is None or self.options.weights.get("visual", 1.0) == 0:
            return {}
        if derived.vector_store(IMAGE_SPACE).ntotal == 0:
            return {}
        return self._vector_channel(derived, IMAGE_SPACE, embedder.embed_texts([query])[0],
                                    self.options.visual_floor, self.options.visual_ceiling)

    # -- search --------------------------------------------------------------------------
    def open_all(self) -> None:
        """Open the catalog and load every derived index now rather than at the first search."""
        _, derived = self._open()
        if derived.keywords.exists():
            derived.keywords.index  # noqa: B018 - opens the keyword index
        for space in derived.spaces():
            derived.vector_store(space)

    def index_kinds(self) -> dict[str, str]:
        """The engines of the open index: {"keywords": whoosh|tantivy, vector space: flat|ivf}."""
        _, derived = self._open()
        return {"keywords": derived.keywords.engine,
                **{space: derived.vector_store(space).kind for space in derived.spaces()}}

    def search(self, query: str, top_k: int = 3, *, timings: dict[str, float] | None = None) -> list[Hit]:
        """The ``top_k`` best videos for ``query`` with the moments that earned their score.

        Any string is a valid query (see :func:`clean_query`; only the first
        :data:`retriever.keyword.MAX_QUERY_TERMS` distinct words count for the keyword
        channel); one that is empty once cleaned gives no hits.

        ``timings``, when given, receives the seconds spent per part: ``keyword``,
        ``semantic`` and ``visual`` (query embedding included), ``catalog`` (rows read for the
        results) and ``open`` (noticing and loading what an indexer committed).
        """
        clock = _Clock(timings)
        query = clean_query(query)
        if not query:
            return []
        catalog, derived = self._open()
        clock.lap("open")
        opts = self.options
        searcher = KeywordSearcher(derived.keywords, opts.scorer, opts.keyword_norm)
        kw_videos, kw_moments = searcher.search(query, opts.candidates)
        clock.lap("keyword")
        sem_moments = self._semantic(derived, query)
        clock.lap("semantic")
        vis_frames = self._visual(derived, query)
        clock.lap("visual")

        moment_rows = catalog.moments(set(kw_moments) | set(sem_moments))
        frame_rows = catalog.keyframes_by_id(list(vis_frames))
        clock.lap("catalog")
        if opts.screen_semantic_weight != 1.0:
            sem_moments = {mid: s * opts.screen_semantic_weight if (row := moment_rows.get(mid)) is not None
                           and row.kind == "screen" else s for mid, s in sem_moments.items()}
        channels: dict[str, dict[int, float]] = {"keyword": kw_videos, "semantic": {}}
        if self.hub.frame_embedder is not None:
            channels["visual"] = {}
        for owners, rows, channel in ((sem_moments, moment_rows, "semantic"), (vis_frames, frame_rows, "visual")):
            best = channels.get(channel)
            for oid, s in owners.items():
                row = rows.get(oid)
                if best is not None and row is not None and s > best.get(row.video_id, -1.0):
                    best[row.video_id] = s  # a video scores its best moment (or keyframe)

        fused = fuse(channels, opts.weights, opts.fusion, opts.rrf_k)
        top = sorted((v for v in fused if fused[v] > 0), key=lambda v: fused[v], reverse=True)[: max(0, top_k)]
        clock.lap("fusion")
        videos = {v.id: v for v in catalog.videos(top)}

        per_video: dict[int, list[ScoredMoment]] = {}
        moment_channels = {"keyword": {m: s for m, (_, s) in kw_moments.items()}, "semantic": sem_moments}
        moment_weights = dict(opts.weights)
        if opts.moment_keyword_weight is not None and opts.weights.get("keyword", 1.0) != 0:
            moment_weights["keyword"] = opts.moment_keyword_weight  # a channel switched off stays off
        for mid, score in fuse(moment_channels, moment_weights, "sum").items():
            m: Moment | None = moment_rows.get(mid)
            if m is None or m.video_id not in videos or score <= 0:
                continue
            per_video.setdefault(m.video_id, []).append(ScoredMoment(
                m.start, m.end, m.kind, m.text, score,
                {name: ch.get(mid, 0.0) for name, ch in moment_channels.items()}, m.id, m.language))
        for kid, s in vis_frames.items():
            k = frame_rows.get(kid)
            if k is None or k.video_id not in videos:
                continue
            per_video.setdefault(k.video_id, []).append(ScoredMoment(
                k.t, k.t, "keyframe", "", opts.weights.get("visual", 1.0) * s, {"visual": s}, keyframe_id=k.id))

        hits = []
        for vid in top:
            video = videos.get(vid)
            if video is None:  # removed since the derived index was read
                continue
            moments = sorted(per_video.get(vid, []), key=lambda m: m.score, reverse=True)[: opts.moments_per_hit]
            _add_context(moments, catalog.moments_of(vid), opts.context_gap)
            keyframes = [{"id": k.id, "t": round(k.t, 3)} for k in catalog.keyframes_of(vid)]
            _screen_thumbnails(moments, keyframes)
            hits.append(Hit(vid, video.path, video.name, fused[vid],
                            {name: ch.get(vid, 0.0) for name, ch in channels.items()},
                            moments, video.duration, keyframes[: opts.keyframes_per_hit]))
        clock.lap("catalog")
        return hits


def _add_context(moments: list[ScoredMoment], of_video: list[Moment], gap: float) -> None:
    """Give each moment the sentence before and after it (same kind, at most ``gap`` seconds away)."""
    by_kind: dict[str, list[Moment]] = {}
    for m in sorted(of_video, key=lambda m: (m.start, m.end)):
        by_kind.setdefault(m.kind, []).append(m)
    for sm in moments:
        row = by_kind.get(sm.kind, [])
        at = next((i for i, m in enumerate(row) if m.id == sm.id), None)
        if at is None:
            continue
        before = row[at - 1] if at > 0 and sm.start - row[at - 1].end <= gap else None
        after = row[at + 1] if at + 1 < len(row) and row[at + 1].start - sm.end <= gap else None
        sm.context = [m for m in (before, after) if m is not None]


def _screen_thumbnails(moments: list[ScoredMoment], keyframes: list[dict[str, Any]]) -> None:
    """A screen moment shows the frame its text was first read from: the indexer stores that frame as a
    keyframe at the moment's start."""
    at = {k["t"]: k["id"] for k in keyframes}
    for m in moments:
        if m.kind == "screen" and m.keyframe_id is None:
            m.keyframe_id = at.get(round(m.start, 3))


class _Clock:
    """Adds the seconds since the last lap to ``timings[name]`` (nothing when ``timings`` is None)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
            self.last = now
