"""The per-video extraction: from one file to keyframes, moments and vectors, as plain data.

:func:`extract` runs the stages (probe, keyframes, visual, audio, speech, describe,
embed) on one file and touches no catalog; :func:`identify_file` hashes one file. Both
are plain functions on plain data, so an executor can run them here
(:class:`LocalExecutor`) or on Ray workers (:mod:`indexer.distributed`). The catalog
writer that decides what to extract and stores the results is :mod:`indexer.writer`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from indexer.failures import failure_reason
from indexer.failures import check_unchanged as _check_unchanged, one_line as _one_line  # the names extract() uses
from indexer.frames import decode_frames
from indexer.keyframes import KeyframeOptions
from indexer.media import SAMPLE_RATE, content_id, decode_audio, display_path, probe, stat_file
from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Keyframe, Moment
from indexer.screen import ScreenOptions
from indexer.keyword_index import KeywordOptions
from indexer.speech import main_language, sentence_moments, transcribe_speech
from indexer.vector_index import VectorIndexOptions
from indexer.windows import SpeechOptions
from models.errors import MediaError, VideoQAError
from models.hub import ModelHub

__all__ = ["IndexOptions", "STAGES", "FoundFile", "Identified",
           "identify_file", "identify_here", "Job", "Extraction", "extract", "Executor", "LocalExecutor"]

log = logging.getLogger(__name__)

STAGES = ("identify", "probe", "frames", "visual", "audio", "speech", "describe", "embed", "write")


@dataclass(frozen=True)
class IndexOptions:
    keyframes: KeyframeOptions = KeyframeOptions()
    screen: ScreenOptions = ScreenOptions()
    speech: SpeechOptions = SpeechOptions()
    describe_window: float = 0.0  # also describe each window of this many seconds (0: whole video only)
    force: bool = False  # index again even when the content is already in the catalog
    vector_index: VectorIndexOptions = VectorIndexOptions()
    keyword_index: KeywordOptions = KeywordOptions()


class _Stages:
    """Times the stages of one file and drives its progress bar."""

    def __init__(self, name: str, progress: bool):
        from tqdm.auto import tqdm

        self.seconds: dict[str, float] = {}
        self.current = ""
        self.bar = tqdm(total=len(STAGES) - 2, desc=name[:40], unit="stage", leave=False, position=1,
                        disable=not progress, dynamic_ncols=True)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.current = name
        self.bar.set_postfix_str(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 4)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class Job:
    """A file to extract, as the catalog writer identified it (plain data: it travels to Ray workers)."""

    path: str  # absolute; the same path must reach the file wherever the extraction runs
    content_id: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FoundFile:
    """A file found for indexing, as the writer stat-ed it; its content id when the catalog knows it unchanged."""

    path: str
    size: int
    mtime_ns: int
    content_id: str | None = None  # None: to be hashed


Identified = tuple[str | None, str | None, float]  # (content id, or None and why not; seconds)


def identify_file(found: FoundFile) -> Identified:
    """(content id, None, seconds), or (None, one-line reason, seconds) when the file cannot be hashed.

    Runs where the executor says (here, or on a Ray worker next to the data); the file
    must still be what the writer saw.
    """
    t0 = time.perf_counter()
    if found.content_id is not None:
        return found.content_id, None, 0.0
    path = Path(found.path)
    try:
        st = stat_file(path)
        _check_unchanged(path, (found.size, found.mtime_ns), st)
        cid = content_id(path)
        _check_unchanged(path, st)
    except Exception as exc:  # reported for this file; the batch goes on
        return None, failure_reason(exc, found.path, "identify"), time.perf_counter() - t0
    return cid, None, time.perf_counter() - t0


def identify_here(files: Iterable[FoundFile]) -> Iterator[tuple[FoundFile, Identified]]:
    """:func:`identify_file` of each file in this process, lazily, in order."""
    for found in files:
        yield found, identify_file(found)


@dataclass
class Extraction:
    """What the per-video stages made of one file, ready for the catalog writer (plain data).

    ``failure`` is (stage, one-line reason) when the file could not be read; ``fatal`` is
    set when the extraction cannot work for any file (a missing model), which stops the run.
    """

    info: dict[str, Any] = field(default_factory=dict)
    keyframes: list[Keyframe] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)
    vectors: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # space -> (owner, matrix)
    dims: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failure: tuple[str, str] | None = None
    fatal: tuple[str, str] | None = None  # (error class in models.errors, message)


def extract(job: Job, hub: ModelHub, options: IndexOptions, *, progress: bool = False) -> Extraction:
    """Run the per-video stages (probe to embed) on one file; no catalog involved.

    The same function runs in the indexing process (local executor) and in Ray workers.
    A file that cannot be read comes back with ``failure`` set; a
    :class:`~models.errors.VideoQAError` (a missing model, a bad setting) is raised.
    """
    path = Path(job.path)
    out = Extraction()
    stages = _Stages(display_path(path.name), progress)
    try:
        with stages.stage("probe"):
            st = stat_file(path)
            _check_unchanged(path, (job.size, job.mtime_ns), st)
            info = probe(path)
            out.info = {"duration": info.duration}  # reported even when a later stage fails
        with stages.stage("frames"):  # one decode pass: keyframes, on-screen text, the describer's frames
            frames = decode_frames(path, hub, options.keyframes, options.screen, info.duration,
                                   describe_window=options.describe_window)
            out.keyframes = frames.keyframes
            stages.seconds["screen"] = frames.screen_seconds
        with stages.stage("visual"):
            frame_embedder = hub.frame_embedder
            if frame_embedder is not None:
                out.vectors[IMAGE_SPACE] = ("keyframe", frame_embedder.embed_images(_rgb(out.keyframes)))
                out.dims[IMAGE_SPACE] = frame_embedder.dim
        with stages.stage("audio"):
            audio = decode_audio(path, SAMPLE_RATE) if info.has_audio else np.zeros(0, np.float32)
        with stages.stage("speech"):
            segments = []
            if audio.size:
                segments = transcribe_speech(audio, hub.required.voice_activity, hub.required.transcriber,
                                             options.speech, where=path.name)
            del audio
            moments = sentence_moments(segments)
            moments += frames.screen
        with stages.stage("describe"):
            describer = hub.describer
            if describer is not None:
                moments += _describe(describer, path, info.duration, options.describe_window, frames.vl_frames)
        with stages.stage("embed"):
            embedder = hub.text_embedder
            if embedder is not None and moments:
                out.vectors[TEXT_SPACE] = ("moment", embedder.embed_documents([m.text for m in moments]))
                out.dims[TEXT_SPACE] = embedder.dim
        stages.current = "write"  # what the writer would find: the file is not the one that was read
        _check_unchanged(path, st)
        out.moments = moments
        out.info = {"duration": info.duration, "fps": info.fps, "width": info.width, "height": info.height,
                    "has_audio": info.has_audio, "language": main_language(segments)}
    except MediaError as exc:
        out.failure = (stages.current, _one_line(exc.problem))
    except VideoQAError:
        raise  # a missing model or a bad setting: every file would fail
    except Exception as exc:  # a bug or a library failure on this file: reported, the batch goes on
        log.debug("%s failed in stage %s", job.path, stages.current, exc_info=True)
        out.failure = (stages.current, _one_line(f"{stages.current} failed: {type(exc).__name__}: {exc}"))
    finally:
        stages.close()
        out.seconds = stages.seconds
    if out.failure:  # nothing half-made travels back
        out.keyframes, out.moments, out.vectors = [], [], {}
    return out


class LocalExecutor:
    """Extracts the files one after the other in this process (the default)."""

    name = "local"

    def __init__(self, hub: ModelHub, options: IndexOptions, *, progress: bool = False):
        self.hub, self.options, self.progress = hub, options, progress

    def identify(self, files: Iterable[FoundFile]) -> Iterator[tuple[FoundFile, Identified]]:
        return identify_here(files)

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Extraction]]:
        for job in jobs:  # lazily: each file is identified only after the previous one is written
            yield job, extract(job, self.hub, self.options, progress=self.progress)

    def models_loaded(self) -> list[dict[str, Any]]:
        return self.hub.loaded()

    def close(self) -> None:
        pass


class Executor(Protocol):
    """Where the per-video extraction runs; results come back to the one catalog writer."""

    name: str

    def identify(self, files: Iterable[FoundFile]) -> Iterator[tuple[FoundFile, Identified]]:
        """:func:`identify_file` of each file, in order."""
        ...

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Extraction]]: ...

    def models_loaded(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def _describe(describer: Any, path: Path, duration: float, step: float,
              frames: list[tuple[float, np.ndarray]]) -> list[Moment]:
    """A description of the whole video, and of each window of ``step`` seconds when it is set, from the
    frames of the decode pass (RGB, the describer's rate and size)."""
    spans = [(0.0, duration)]
    if step > 0 and duration > step:
        spans += [(s, min(s + step, duration)) for s in np.arange(0.0, duration, step) if duration - s > 0.5]
    moments = []
    for start, end in spans:
        whole = (start, end) == (0.0, duration)
        shown = frames if whole else [(t, f) for t, f in frames if start <= t <= end]
        text = describer.describe(path, None if whole else float(start), None if whole else float(end),
                                  frames=shown or None)
        if text.strip():
            moments.append(Moment(float(start), float(end), "description", text.strip()))
    return moments


def _rgb(keyframes: Sequence[Keyframe]) -> list[np.ndarray]:
    """The keyframes' thumbnails as RGB arrays (what the image models read)."""
    import cv2

    return [cv2.cvtColor(cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for k in keyframes]
