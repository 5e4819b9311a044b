"""Index a folder of videos: identify, keyframes, speech, vectors, catalog, derived indexes.

One :class:`Indexer` per index directory and process; a file lock keeps a second
writer out. The writer identifies each file (content hash; what is indexed already is
skipped), an executor runs the per-video stages (:func:`extract`: in this process, or
on Ray workers with :mod:`indexer.distributed`), and the writer commits each result to
the catalog in one transaction, so an interrupted run loses at most the files in hand
and the next run carries on from there. A file that fails is recorded with its reason
and the batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from indexer.catalog import Catalog
from indexer.frames import decode_frames
from indexer.keyframes import KeyframeOptions
from indexer.media import SAMPLE_RATE, content_id, decode_audio, discover, display_path, probe, stat_file
from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Keyframe, Moment
from indexer.screen import ScreenOptions
from indexer.speech import SpeechOptions, group_moments, main_language, transcribe_speech
from indexer.store import (
    DerivedIndexes, KeywordOptions, VectorIndexOptions, check_manifest, write_manifest, writer_lock,
)
from models.errors import MediaError, VideoQAError
from models.hub import ModelHub

__all__ = ["IndexOptions", "FileResult", "IndexReport", "Indexer", "STAGES", "Candidate", "Identified",
           "identify_file", "identify_here", "Job", "Extraction", "extract", "Executor", "LocalExecutor"]

log = logging.getLogger(__name__)

STAGES = ("identify", "probe", "frames", "visual", "audio", "speech", "describe", "embed", "write")


@dataclass(frozen=True)
class IndexOptions:
    keyframes: KeyframeOptions = KeyframeOptions()
    screen: ScreenOptions = ScreenOptions()
    speech: SpeechOptions = SpeechOptions()
    moment_max_seconds: float = 10.0
    moment_max_gap: float = 2.0
    describe_window: float = 0.0  # also describe each window of this many seconds (0: whole video only)
    force: bool = False  # index again even when the content is already in the catalog
    vector_index: VectorIndexOptions = VectorIndexOptions()
    keyword_index: KeywordOptions = KeywordOptions()


@dataclass
class FileResult:
    path: str
    status: str  # indexed | skipped | failed
    reason: str = ""
    stage: str = ""
    duration: float = 0.0
    moments: int = 0
    keyframes: int = 0
    language: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IndexReport:
    results: list[FileResult] = field(default_factory=list)
    models_loaded: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    repaired: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.count("indexed"), "skipped": self.count("skipped"), "failed": self.count("failed"),
            "elapsed": round(self.elapsed, 3), "repaired": self.repaired,
            "models_loaded": self.models_loaded, "files": [r.to_dict() for r in self.results],
        }


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
class Candidate:
    """A file the writer has looked at: its stat, and its content id when the catalog knows it unchanged."""

    path: str
    size: int
    mtime_ns: int
    content_id: str | None = None  # None: to be hashed


Identified = tuple[str | None, str | None, float]  # (content id, or None and why not; seconds)


def identify_file(candidate: Candidate) -> Identified:
    """(content id, None, seconds), or (None, one-line reason, seconds) when the file cannot be hashed.

    Runs where the executor says (here, or on a Ray worker next to the data); the file
    must still be what the writer saw.
    """
    t0 = time.perf_counter()
    if candidate.content_id is not None:
        return candidate.content_id, None, 0.0
    path = Path(candidate.path)
    try:
        st = stat_file(path)
        _check_unchanged(path, (candidate.size, candidate.mtime_ns), st)
        cid = content_id(path)
        _check_unchanged(path, st)
    except MediaError as exc:
        return None, _one_line(exc.problem), time.perf_counter() - t0
    except Exception as exc:  # reported for this file; the batch goes on
        return None, _one_line(f"identify failed: {type(exc).__name__}: {exc}"), time.perf_counter() - t0
    return cid, None, time.perf_counter() - t0


def identify_here(candidates: Iterable[Candidate]) -> Iterator[tuple[Candidate, Identified]]:
    """:func:`identify_file` of each candidate in this process, lazily, in order."""
    for candidate in candidates:
        yield candidate, identify_file(candidate)


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
            frame_embedder = hub.get("frame_embedder")
            if frame_embedder is not None:
                out.vectors[IMAGE_SPACE] = ("keyframe", frame_embedder.embed_images(_rgb(out.keyframes)))
                out.dims[IMAGE_SPACE] = frame_embedder.dim
        with stages.stage("audio"):
            audio = decode_audio(path, SAMPLE_RATE) if info.has_audio else np.zeros(0, np.float32)
        with stages.stage("speech"):
            segments = []
            if audio.size:
                segments = transcribe_speech(audio, hub.require("voice_activity"), hub.require("transcriber"),
                                             options.speech)
            del audio
            moments = group_moments(segments, options.moment_max_seconds, options.moment_max_gap)
            moments += frames.screen
        with stages.stage("describe"):
            describer = hub.get("describer")
            if describer is not None:
                moments += _describe(describer, path, info.duration, options.describe_window, frames.vl_frames)
        with stages.stage("embed"):
            embedder = hub.get("text_embedder")
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

    def identify(self, candidates: Iterable[Candidate]) -> Iterator[tuple[Candidate, Identified]]:
        return identify_here(candidates)

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

    def identify(self, candidates: Iterable[Candidate]) -> Iterator[tuple[Candidate, Identified]]:
        """:func:`identify_file` of each candidate, in order."""
        ...

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Extraction]]: ...

    def models_loaded(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class Indexer:
    """Indexes video files into ``index_dir`` with the models of ``hub``.

    This process is the only catalog writer. It identifies each file (content hash, and
    the skip of what is already indexed), hands the rest to ``executor`` for extraction
    (this process by default, or Ray workers: :mod:`indexer.distributed`) and writes each
    result as it comes back.
    """

    def __init__(self, index_dir: Path, hub: ModelHub, options: IndexOptions = IndexOptions(),
                 *, progress: bool = False, executor: Executor | Callable[[], Executor] | None = None):
        self.index_dir = Path(index_dir)
        self.hub = hub
        self.options = options
        self.progress = progress
        self.executor = executor

    def _wanted_manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = {"profile": self.hub.profile, "spaces": {}}
        for role, space in (("text_embedder", TEXT_SPACE), ("frame_embedder", IMAGE_SPACE)):
            model = self.hub.get(role)
            if model is not None:
                manifest["spaces"][space] = {"model": model.model_name, "backend": model.backend_name}
        transcriber = self.hub.get("transcriber")
        if transcriber is not None:
            manifest["transcriber"] = transcriber.model_name
        return manifest

    def index(self, paths: Sequence[Path], *, repair: bool = False,
              on_file: Callable[[int, int, FileResult], None] | None = None) -> IndexReport:
        """Index every video under ``paths``; never stops at a bad file.

        ``on_file(done, total, result)`` is called after each file (for live progress).
        """
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        report = IndexReport()
        with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
            wanted = self._wanted_manifest()
            check_manifest(catalog, wanted)
            derived = DerivedIndexes(catalog, self.options.vector_index, self.options.keyword_index)
            derived.clean_leftovers()
            if repair or not derived.usable():
                if catalog.count_videos() or repair:
                    derived.rebuild()
                    report.repaired = True
                else:
                    derived.mark_current()
            files = list(discover(paths))
            # Built once the lock is held: a second writer stops before starting any worker.
            executor = self._executor()
            run_id = catalog.start_run({"paths": [str(p) for p in paths], "profile": self.hub.profile,
                                        "executor": executor.name})
            bar = tqdm(total=len(files), desc="videos", unit="video", disable=not self.progress,
                       dynamic_ncols=True)

            def done(result: FileResult) -> None:
                report.results.append(result)
                if result.status == "failed":
                    log.warning("%s: %s", result.path, result.reason)
                bar.update(1)
                bar.set_postfix_str(display_path(Path(result.path).name)[:30])
                if on_file is not None:
                    on_file(len(report.results), len(files), result)

            identified: dict[str, tuple[FileResult, os.stat_result]] = {}
            held: dict[str, list[tuple[FileResult, Path, os.stat_result]]] = {}
            jobs = self._identify(files, executor, catalog, derived, run_id, done, identified, held)
            try:
                with contextlib.closing(jobs), contextlib.closing(executor.run(jobs)) as results:
                    for job, extraction in results:
                        result = self._store(job, extraction, identified.pop(job.path), catalog, derived, wanted,
                                             run_id)
                        done(result)
                        for waiting, path, st in held.pop(job.content_id, []):  # its duplicates in this batch
                            done(self._duplicate(job.content_id, result, waiting, path, st, catalog, derived,
                                                 run_id))
                        _write_derived(derived, derived.maybe_flush)
                report.models_loaded = executor.models_loaded()
            finally:  # also when interrupted: the run records what it did
                bar.close()
                catalog.finish_run(run_id, report.count("indexed"), report.count("skipped"), report.count("failed"))
                _write_derived(derived, derived.flush)
                if executor is not self.executor:
                    executor.close()
        report.elapsed = time.perf_counter() - t0
        return report

    def _executor(self) -> Executor:
        """The executor given (an instance, or a function that makes one), else a local one."""
        if self.executor is None:
            return LocalExecutor(self.hub, self.options, progress=self.progress)
        if callable(self.executor) and not hasattr(self.executor, "run"):
            return self.executor()
        return self.executor

    def _identify(self, files: Sequence[Path], executor: Executor, catalog: Catalog, derived: DerivedIndexes,
                  run_id: int, done: Callable[[FileResult], None],
                  identified: dict[str, tuple[FileResult, os.stat_result]],
                  held: dict[str, list[tuple[FileResult, Path, os.stat_result]]]) -> Iterator[Job]:
        """The files to extract, as jobs; files already indexed or unreadable are reported here.

        This process stats each file and looks it up by path; the content hash of a new or
        changed file is computed by the executor (here, or on Ray workers next to the data).
        ``held`` has an entry per content being extracted: a file with the same bytes waits
        there until that one is stored, and is never extracted twice.
        """
        seen: dict[str, tuple[Path, os.stat_result, FileResult]] = {}

        def fail(result: FileResult, reason: str) -> None:
            result.reason = _one_line(reason)
            catalog.record_failure(result.path, "identify", result.reason, run_id)
            done(result)

        def candidates() -> Iterator[Candidate]:
            for path in files:
                abspath = display_path(path.absolute())  # printable and storable even when the name is not UTF-8
                result = FileResult(path=abspath, status="failed", stage="identify")
                t0 = time.perf_counter()
                try:
                    if abspath != str(path.absolute()):
                        raise MediaError(abspath, "the file name is not valid UTF-8; rename the file to index it")
                    st = stat_file(path)  # before the bytes are read: a change from here on is noticed
                    known = catalog.video_by_path(abspath)
                    cid = known.content_id if known and known.same_file(st) else None
                except MediaError as exc:
                    fail(result, exc.problem)
                    continue
                except VideoQAError:
                    raise
                except Exception as exc:
                    log.debug("%s failed in stage identify", abspath, exc_info=True)
                    fail(result, f"identify failed: {type(exc).__name__}: {exc}")
                    continue
                result.seconds["identify"] = round(time.perf_counter() - t0, 4)
                seen[abspath] = (path, st, result)
                yield Candidate(abspath, st.st_size, st.st_mtime_ns, cid)

        for candidate, (cid, error, seconds) in executor.identify(candidates()):
            path, st, result = seen.pop(candidate.path)
            result.seconds["identify"] = round(result.seconds["identify"] + seconds, 4)
            if cid is None:
                fail(result, error or "identify failed")
                continue
            try:
                skipped = self._skip_known(cid, path, st, catalog, derived, result)
            except VideoQAError:
                raise
            except Exception as exc:
                log.debug("%s failed in stage identify", candidate.path, exc_info=True)
                fail(result, f"identify failed: {type(exc).__name__}: {exc}")
                continue
            if skipped:
                done(result)
                continue
            if cid in held and not self.options.force:  # the same bytes are being extracted
                held[cid].append((result, path, st))
                continue
            held.setdefault(cid, [])
            identified[candidate.path] = (result, st)
            yield Job(candidate.path, cid, st.st_size, st.st_mtime_ns)

    def _duplicate(self, cid: str, first: FileResult, result: FileResult, path: Path, st: os.stat_result,
                   catalog: Catalog, derived: DerivedIndexes, run_id: int) -> FileResult:
        """A file held back because a file with the same bytes was being extracted; that one is stored now."""
        try:
            if self._skip_known(cid, path, st, catalog, derived, result):
                return result  # skipped: the same content as the file just indexed
        except VideoQAError:
            raise
        except Exception as exc:
            log.debug("%s failed in stage identify", result.path, exc_info=True)
            first = FileResult(first.path, "failed", f"{type(exc).__name__}: {exc}", "identify")
        result.stage = first.stage or "identify"
        result.reason = _one_line(f"same content as {first.path}, which was not indexed: {first.reason}")
        catalog.record_failure(result.path, result.stage, result.reason, run_id)
        return result

    def _skip_known(self, cid: str, path: Path, st: os.stat_result, catalog: Catalog, derived: DerivedIndexes,
                    result: FileResult) -> bool:
        """Fill ``result`` and return True when the content is already indexed (and not forced)."""
        existing = catalog.video_by_content(cid)
        if existing is None or self.options.force:
            return False
        abspath = result.path
        result.status, result.duration, result.stage = "skipped", existing.duration, ""
        if existing.path == abspath:
            result.reason = "unchanged"
        elif not Path(existing.path).exists():
            catalog.move_video(existing.id, abspath, st)
            video = catalog.videos([existing.id])[0]
            derived.apply(video, catalog.moments_of(video.id), {}, flush=False)  # the title is searchable
            result.reason = f"moved from {existing.path}"
        else:
            result.reason = f"same content as {existing.path}"
        catalog.clear_failure(abspath)
        return True

    def _store(self, job: Job, extraction: Extraction, identified: tuple[FileResult, os.stat_result],
               catalog: Catalog, derived: DerivedIndexes, wanted: dict[str, Any], run_id: int) -> FileResult:
        """Write one extraction to the catalog (one transaction), then to the derived indexes."""
        if extraction.fatal:
            raise _fatal_error(*extraction.fatal)
        result, st = identified  # ``st``: the file as it was when its bytes were hashed
        path = Path(job.path)
        result.seconds.update(extraction.seconds)
        result.duration = float(extraction.info.get("duration", 0.0))
        if extraction.failure:
            result.stage, result.reason = extraction.failure
            catalog.record_failure(job.path, result.stage, result.reason, run_id)
            return result
        t0 = time.perf_counter()
        try:
            _check_unchanged(path, st)
            # Another file of this batch with the same bytes may have been written meanwhile.
            if self._skip_known(job.content_id, path, st, catalog, derived, result):
                return result
            if extraction.vectors:
                for space, dim in extraction.dims.items():
                    wanted["spaces"][space]["dim"] = dim
                check_manifest(catalog, wanted)
                write_manifest(catalog, wanted)
            added = catalog.add_video(content_id=job.content_id, path=job.path, stat=st, info=extraction.info,
                                      keyframes=extraction.keyframes, moments=extraction.moments,
                                      vectors=extraction.vectors, run_id=run_id)
        except MediaError as exc:
            result.stage, result.reason = "write", _one_line(exc.problem)
            catalog.record_failure(job.path, "write", result.reason, run_id)
            return result
        except VideoQAError:
            raise  # a mismatched index stops the run: every file would fail
        except Exception as exc:  # e.g. the disk is full: this file is not stored, the batch goes on
            log.debug("%s failed in stage write", job.path, exc_info=True)
            result.stage, result.reason = "write", _one_line(f"write failed: {type(exc).__name__}: {exc}")
            catalog.record_failure(job.path, "write", result.reason, run_id)
            return result
        finally:
            result.seconds["write"] = round(time.perf_counter() - t0, 4)
        # Committed: from here on the video is indexed whatever happens to the derived indexes.
        moments = extraction.moments
        result.status, result.stage, result.reason = "indexed", "", ""
        result.moments, result.keyframes = len(moments), len(extraction.keyframes)
        result.language = extraction.info.get("language")
        for m, mid in zip(moments, added.moment_ids):
            m.id, m.video_id = mid, added.video_id
        vectors = {space: (added.moment_ids if owner == "moment" else added.keyframe_ids, matrix)
                   for space, (owner, matrix) in extraction.vectors.items()}
        _write_derived(derived, lambda: derived.apply(
            catalog.videos([added.video_id])[0], moments, vectors, replaced_videos=added.replaced_videos,
            replaced_vectors=added.replaced_vectors, flush=False))
        result.seconds["write"] = round(time.perf_counter() - t0, 4)
        return result


def _write_derived(derived: DerivedIndexes, write: Callable[[], Any]) -> None:
    """Update the keyword and vector indexes (``derived.apply``, ``flush`` or ``maybe_flush``);
    when that fails, the catalog still has every video (derived.json stays behind): rebuild
    them from it, or leave it to the next run or search."""
    try:
        write()
    except Exception as exc:
        log.warning("keyword/vector index update failed (%s); rebuilding them from the catalog", exc)
        try:
            derived.rebuild()
        except Exception:
            log.exception("rebuilding the derived indexes failed; the next run or search retries")


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


def _one_line(text: str, limit: int = 300) -> str:
    """An error message on one line (library messages can span several), not too long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_unchanged(path: Path, before: os.stat_result | tuple[int, int], now: os.stat_result | None = None) -> None:
    """Raise :class:`MediaError` when the file is no longer what was read at the start.

    Size, modification time and inode are compared, as ``make`` and ``rsync`` do: a file
    still being copied or recorded, or replaced meanwhile, must not be stored as a mix of
    its old and new bytes. It is recorded as failed, and the next run reads it again.
    ``before`` is a stat, or (size, mtime_ns) as a :class:`Job` carries them to another
    machine (where inode numbers mean nothing); ``now``: a stat just taken, if any.
    """
    if now is None:
        try:
            now = path.stat()
        except OSError as exc:
            raise MediaError(path, f"the file disappeared while it was being indexed ({exc.strerror or exc})") from exc
    if isinstance(before, os.stat_result):  # (a stat_result is a tuple too: test it first)
        size, mtime_ns = before.st_size, before.st_mtime_ns
        same_file = (now.st_ino, now.st_dev) == (before.st_ino, before.st_dev)
    else:
        size, mtime_ns = before
        same_file = True
    if (now.st_size, now.st_mtime_ns) == (size, mtime_ns) and same_file:
        return
    what = (f"it grew from {size} to {now.st_size} bytes" if now.st_size > size
            else f"its size went from {size} to {now.st_size} bytes" if now.st_size != size
            else "it was replaced" if not same_file else "it was written to")
    raise MediaError(path, f"the file changed while it was being indexed ({what}); index it again once it is complete")


def _fatal_error(name: str, message: str) -> VideoQAError:
    """The error a worker reported, as the same class when models.errors has it (the CLI's exit code)."""
    import models.errors as errors

    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, VideoQAError) and cls is not MediaError:
        return cls(message)
    return VideoQAError(message)


def _rgb(keyframes: Sequence[Keyframe]) -> list[np.ndarray]:
    """The keyframes' thumbnails as RGB arrays (what the image models read)."""
    import cv2

    return [cv2.cvtColor(cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for k in keyframes]
