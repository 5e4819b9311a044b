"""The facade: one object the CLI, the web UI and Python users share.

>>> from app import VideoQA
>>> qa = VideoQA(index_dir="my-index")                 # any setting as a keyword
>>> qa.index(["videos/"])                              # IndexReport
>>> qa.search("what you can do for your country")      # [Hit, ...]
>>> qa.ask("what can you do for your country?")        # Answer with citations

Models load lazily, once, and are shared by indexing, search and answering.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from app.answering import Answer, AnswerEvent, answer_events
from app.general import is_general, overview_moments, topic_of
from app.settings import Settings, language_list, load_settings
from indexer.catalog import Catalog
from indexer.schema import Video
from indexer.keyframes import KeyframeOptions
from indexer.pipeline import IndexOptions
from indexer.reembed import ReembedReport, reembed_text
from indexer.writer import FileResult, Indexer, IndexReport
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.locks import writer_lock
from indexer.screen import ScreenOptions
from indexer.vector_index import VectorIndexOptions
from indexer.windows import SpeechOptions
from models.errors import ConfigError, IndexLockedError
from models.hub import ModelHub, ModelsConfig, RoleConfig, report, resolve_profile
from retriever import Hit, RetrievalOptions, Retriever, ScoredMoment, clean_query

__all__ = ["VideoQA"]

log = logging.getLogger(__name__)


def models_config(settings: Settings, profile: str | None = None) -> ModelsConfig:
    """The model configuration the settings describe (profile unresolved unless given)."""
    s = settings
    vl = {"fps": s.vl_fps, "max_pixels": s.vl_max_pixels, "max_frames": s.vl_max_frames,
          "max_new_tokens": s.max_new_tokens, "dtype": s.dtype}

    def role(name: str, model_setting: str | None = None, **options: Any) -> RoleConfig:
        return RoleConfig(backend=getattr(s, name), model=getattr(s, model_setting or f"{name}_model"),
                          path=getattr(s, f"{name}_path"), options=options)

    return ModelsConfig(
        profile=profile or s.profile,
        device=s.device,
        cache_dir=Path(s.cache_dir),
        roles={
            "voice_activity": RoleConfig(options={"threshold": s.vad_threshold}),
            "text_reader": role("text_reader", det_max_side=s.screen_detect_side),
            "transcriber": role("transcriber", "whisper_model", beam_size=s.beam_size,
                                no_repeat_ngram_size=s.no_repeat_ngram_size, english_reader=s.english_reader),
            "frame_embedder": role("frame_embedder", batch_size=s.clip_batch_size, dtype=s.dtype),
            "describer": role("describer", **vl),
            "answerer": role("answerer", **vl, decline_gate=s.decline_gate, quantization=s.answerer_quantization),
            "text_embedder": role("text_embedder", batch_size=s.embed_batch_size, max_length=s.max_text_tokens,
                                  dtype=s.dtype, weight=s.text_embedder_weight),
            "reranker": role("reranker", batch_size=s.rerank_batch_size, max_length=s.max_text_tokens,
                             dtype=s.dtype, instruction=s.reranker_instruction,
                             quantization=s.answerer_quantization),
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
                                      min_gap=s.keyframe_min_gap, max_keyframes=s.max_keyframes,
                                      max_key_gap=s.keyframe_max_key_gap),
            screen=ScreenOptions(enabled=s.screen_text, sample_fps=s.screen_fps,
                                 min_confidence=s.screen_min_confidence,
                                 languages=language_list(s.screen_languages) or ()),
            speech=SpeechOptions(max_window=s.window_seconds, overlap=s.window_overlap, language=s.language,
                                 languages=language_list(s.languages)),
            describe_window=s.describe_window,
            force=force,
            vector_index=self.vector_options(),
            keyword_index=self.keyword_options(),
        )

    def vector_options(self) -> VectorIndexOptions:
        s = self.settings
        return VectorIndexOptions(s.vector_index, s.vector_ivf_above, s.vector_nprobe, s.vector_encoding)

    def keyword_options(self) -> KeywordOptions:
        return KeywordOptions(self.settings.keyword_engine, self.settings.keyword_tantivy_above)

    def _derived(self, catalog: Catalog) -> DerivedIndexes:
        return DerivedIndexes(catalog, self.vector_options(), self.keyword_options())

    def index(self, paths: Iterable[str | Path], *, progress: bool = False, force: bool = False,
              repair: bool = False, on_file: Callable[[int, int, FileResult], None] | None = None,
              executor: str | None = None) -> IndexReport:
        """Index video files and folders (recursively); incremental by content.

        ``on_file(done, total, result)`` follows the work file by file. ``executor``
        (local or ray; default: the setting) says where the per-video extraction runs.
        """
        options = self.index_options(force)
        executor = executor or self.settings.executor
        runner = None
        if executor == "ray":
            from indexer.distributed import RayExecutor, RayOptions

            s = self.settings
            ray_options = RayOptions(address=s.ray_address, workers=s.ray_workers, cpus=s.ray_worker_cpus,
                                     gpus=s.ray_worker_gpus)
            runner = lambda: RayExecutor(self.hub.config, options, ray_options)  # noqa: E731 - made under the lock
        elif executor != "local":
            raise ConfigError(f"invalid executor {executor!r}, expected one of: local, ray")
        indexer = Indexer(self.index_dir, self.hub, options, progress=progress, executor=runner)
        return indexer.index([Path(p) for p in paths], repair=repair, on_file=on_file)

    def reembed(self, *, progress: bool = False, force: bool = False) -> ReembedReport:
        """Make every moment's text vector again, from the stored text, with the text embedder the
        settings name (after a change of ``text_embedder``; no video is read again)."""
        report = reembed_text(self.index_dir, self.hub, self.index_options(), force=force, progress=progress)
        with self._lock:
            self._retriever = None  # it checked the old model's record when it opened
        return report

    def remove(self, video_id: int) -> None:
        """Take a video out of the index (the file itself is left alone)."""
        with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
            owned = catalog.remove_video(video_id)
            self._derived(catalog).remove(video_id, owned)

    def video(self, video_id: int) -> Video | None:
        """One indexed video, or None."""
        return next(iter(self.retriever.catalog.videos([video_id])), None)

    def ensure_index(self) -> None:
        """Create an empty index when there is none yet, and bring the keyword and vector indexes
        in step with the catalog (rebuilt from it after a crash or damage) as the writer does,
        since searches never rebuild them. While an indexer holds the writer lock this is left
        to it."""
        try:
            with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
                if self._derived(catalog).make_usable():
                    log.info("rebuilt the keyword and vector indexes of %s from its catalog", self.index_dir)
        except IndexLockedError as exc:
            log.info("%s; it brings the keyword and vector indexes up to date itself", exc)

    def repair(self) -> dict[str, int]:
        """Rebuild the keyword and vector indexes from the catalog."""
        with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
            self._derived(catalog).rebuild()
            return catalog.stats()

    # -- search and answers ----------------------------------------------------------------
    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                s = self.settings
                options = RetrievalOptions(
                    weights={"keyword": s.keyword_weight, "semantic": s.semantic_weight, "visual": s.visual_weight},
                    fusion=s.fusion, scorer=s.scorer, keyword_norm=s.keyword_norm, semantic_floor=s.semantic_floor,
                    screen_semantic_weight=s.screen_semantic_weight, moment_keyword_weight=s.moment_keyword_weight,
                    visual_floor=s.visual_floor, visual_ceiling=s.visual_ceiling, vector_index=self.vector_options(),
                    keyword_index=self.keyword_options())
                self._retriever = Retriever(self.index_dir, self.hub, options)
            return self._retriever

    def warm_up(self) -> None:
        """Load the models that answering a question needs (errors surface at the first question)."""
        try:
            hub = self.hub
            for model in (hub.text_embedder, hub.answerer, hub.reranker):  # the answerer's model serves both
                if model is not None:
                    model.load()
        except Exception:  # noqa: BLE001 - reported again, with context, when a question needs the model
            log.debug("warm-up failed", exc_info=True)

    def search(self, query: str, top_k: int | None = None) -> list[Hit]:
        """The best videos for ``query``. Any string is a valid query (it is never parsed as
        query syntax); one that is empty once cleaned (:func:`retriever.clean_query`) gives []."""
        return self.retriever.search(query, self.settings.top_k if top_k is None else top_k)

    def search_many(self, queries: Sequence[str], top_k: int | None = None) -> Iterator[tuple[str, list[Hit]]]:
        """Search several questions with the models loaded once; yields (query, hits) in order."""
        for q in queries:
            yield q, self.search(q, top_k)

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer from the top videos, citing the moment."""
        for event in self.ask_stream(question, top_k):
            if event.kind == "final":
                assert event.answer is not None
                return event.answer
        raise AssertionError("answer_events ends with a final event")  # pragma: no cover

    def ask_stream(self, question: str, top_k: int | None = None) -> Iterator[AnswerEvent]:
        """Answer step by step: each top video's candidate token by token, its score, then the answer.

        >>> for event in qa.ask_stream("which planet has rings?"):
        ...     if event.kind == "token": print(event.text, end="")
        ...     elif event.kind == "final": answer = event.answer
        """
        question = clean_query(question)  # the answerer and reranker get the text search used
        general = is_general(question)
        hits = self._overview_hits(question, top_k) if general else self.search(question, top_k)
        yield AnswerEvent("hits", hits=hits)
        yield from answer_events(question, hits, self.hub.answerer, self.hub.reranker,
                                 threshold=self.settings.answer_threshold, general=general,
                                 declined_not_found=self.settings.not_found_when_declined,
                                 best_moment_only=self.settings.answer_from_best_moment)

    def _overview_hits(self, question: str, top_k: int | None) -> list[Hit]:
        """For a question about a whole video: the videos its other words find (else the library's
        first ones), each with moments spread over the whole video instead of its best few."""
        top_k = self.settings.top_k if top_k is None else top_k
        topic = topic_of(question)
        hits = self.search(topic, top_k) if topic else []
        catalog = self.retriever.catalog
        if not hits:
            hits = [Hit(v.id, v.path, v.name, 0.0, {}, [], v.duration,
                        [{"id": k.id, "t": round(k.t, 3)} for k in catalog.keyframes_of(v.id)][:8])
                    for v in catalog.videos() if catalog.moments_of(v.id)][: max(0, top_k)]
        return [dataclasses.replace(h, moments=[
            ScoredMoment(m.start, m.end, m.kind, m.text, h.score, {}, m.id, m.language)
            for m in overview_moments(catalog.moments_of(h.video_id))]) for h in hits]

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
