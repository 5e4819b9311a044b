"""The facade: one object the CLI, the web UI and Python users share.

>>> from app import VideoQA
>>> qa = VideoQA(index_dir="my-index")                 # any setting as a keyword
>>> qa.index(["videos/"])                              # IndexReport
>>> qa.search("what you can do for your country")      # [Hit, ...]
>>> qa.ask("what can you do for your country?")        # Answer with citations

Models load lazily, once, and are shared by indexing, search and answering.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from app.answering import Answer, extractive_answer
from app.settings import Settings, load_settings
from indexer.catalog import Catalog
from indexer.keyframes import KeyframeOptions
from indexer.pipeline import IndexOptions, Indexer, IndexReport
from indexer.speech import SpeechOptions
from indexer.store import DerivedIndexes, writer_lock
from models.hub import ModelHub, ModelsConfig, RoleConfig, report, resolve_profile
from retriever import Hit, RetrievalOptions, Retriever

__all__ = ["VideoQA"]

log = logging.getLogger(__name__)


def models_config(settings: Settings, profile: str | None = None) -> ModelsConfig:
    """The model configuration the settings describe (profile unresolved unless given)."""
    s = settings
    return ModelsConfig(
        profile=profile or s.profile,
        device=s.device,
        cache_dir=Path(s.cache_dir),
        roles={
            "voice_activity": RoleConfig(options={"threshold": s.vad_threshold}),
            "transcriber": RoleConfig(backend=s.transcriber, model=s.whisper_model, path=s.transcriber_path,
                                      options={"beam_size": s.beam_size,
                                               "no_repeat_ngram_size": s.no_repeat_ngram_size}),
            "text_embedder": RoleConfig(backend=s.text_embedder, model=s.text_embedder_model,
                                        path=s.text_embedder_path),
        },
    )


class VideoQA:
    """Index, search and ask over one index directory."""

    def __init__(self, settings: Settings | None = None, *, hub: ModelHub | None = None, **overrides: Any):
        """``settings`` default to :func:`load_settings`; keyword arguments override single settings.

        ``hub`` shares already built models with another :class:`VideoQA` (e.g. one per index).
        """
        settings = settings or load_settings()
        self.settings = settings.replace(**overrides) if overrides else settings
        self.index_dir = Path(self.settings.index_dir)
        self._hub: ModelHub | None = hub
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()
        self.profile_reason = "shared hub" if hub is not None else ""

    # -- models ----------------------------------------------------------------------------
    @property
    def hub(self) -> ModelHub:
        with self._lock:
            if self._hub is None:
                profile, why = resolve_profile(models_config(self.settings, "full"), self.settings.profile)
                self.profile_reason = why
                log.info("profile: %s (%s)", profile, why)
                self._hub = ModelHub(models_config(self.settings, profile))
            return self._hub

    @property
    def profile(self) -> str:
        return self.hub.profile

    def models(self) -> dict[str, Any]:
        """Every role in both profiles: backend, model, where found or why missing."""
        return {"profile": self.profile, "requested": self.settings.profile, "why": self.profile_reason,
                "roles": report(models_config(self.settings, self.profile))}

    # -- indexing --------------------------------------------------------------------------
    def index_options(self, force: bool = False) -> IndexOptions:
        s = self.settings
        return IndexOptions(
            keyframes=KeyframeOptions(sample_fps=s.keyframe_fps, threshold=s.keyframe_threshold,
                                      min_gap=s.keyframe_min_gap, max_keyframes=s.max_keyframes),
            speech=SpeechOptions(max_window=s.window_seconds, overlap=s.window_overlap, language=s.language),
            moment_max_seconds=s.moment_seconds,
            force=force,
        )

    def index(self, paths: Iterable[str | Path], *, progress: bool = False, force: bool = False,
              repair: bool = False) -> IndexReport:
        """Index video files and folders (recursively); incremental by content."""
        indexer = Indexer(self.index_dir, self.hub, self.index_options(force), progress=progress)
        return indexer.index([Path(p) for p in paths], repair=repair)

    def repair(self) -> dict[str, int]:
        """Rebuild the keyword and vector indexes from the catalog."""
        with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
            DerivedIndexes(catalog).rebuild()
            return catalog.stats()

    # -- search and answers ----------------------------------------------------------------
    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                s = self.settings
                options = RetrievalOptions(weights={"keyword": s.keyword_weight, "semantic": s.semantic_weight},
                                           fusion=s.fusion, scorer=s.scorer, semantic_floor=s.semantic_floor)
                self._retriever = Retriever(self.index_dir, self.hub, options)
            return self._retriever

    def warm_up(self) -> None:
        """Load the models that answering a question needs (errors surface at the first question)."""
        try:
            embedder = self.hub.get("text_embedder")
            if embedder is not None:
                embedder.load()
        except Exception:  # noqa: BLE001 - reported again, with context, when a question needs the model
            log.debug("warm-up failed", exc_info=True)

    def search(self, query: str, top_k: int | None = None) -> list[Hit]:
        return self.retriever.search(query, self.settings.top_k if top_k is None else top_k)

    def search_many(self, queries: Sequence[str], top_k: int | None = None) -> Iterator[tuple[str, list[Hit]]]:
        """Search several questions with the models loaded once; yields (query, hits) in order."""
        for q in queries:
            yield q, self.search(q, top_k)

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer from the top videos, citing the moment."""
        hits = self.search(question, top_k)
        return extractive_answer(question, hits)

    # -- library ---------------------------------------------------------------------------
    def library(self) -> dict[str, Any]:
        """Indexed videos and files that failed, from the catalog."""
        if not (self.index_dir / Catalog.FILENAME).exists():
            return {"videos": [], "failures": [], "stats": {}}
        with Catalog(self.index_dir, readonly=True) as catalog:
            return {"videos": [v.to_dict() for v in catalog.videos()], "failures": catalog.failures(),
                    "stats": catalog.stats()}

    def close(self) -> None:
        if self._retriever is not None:
            self._retriever.close()
