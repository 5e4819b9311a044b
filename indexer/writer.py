"""The indexing run: the one catalog writer, in plain steps.

:class:`Indexer` takes the writer lock (a second writer is refused at once) and runs
each file found under the given folders through the same steps; the state of the run
lives in one :class:`IndexRun`:

1. **found**: the writer stats each file and looks its path up in the catalog;
2. **identified**: the executor hashes new or changed files (here, or on Ray workers next
   to the data) and :meth:`IndexRun.decide` returns what to do with the file: skip it
   (indexed already), follow it (indexed under a path that is gone), hold it (the same
   bytes are being extracted for another file of this run), or extract it;
3. **extracted**: the executor runs :func:`indexer.pipeline.extract` on each job;
4. **written**: the writer checks the file is still the one that was read, commits the
   extraction to the catalog in one transaction, updates the derived indexes, and settles
   the files held for it.

Each step returns a decision (:data:`Decision`) that :meth:`IndexRun.apply` carries
out, and every step runs under one failure guard (:meth:`IndexRun.settle`): a file
that fails is recorded with its stage and a one-line reason and the batch goes on; an
error every file would meet (a missing model, a mismatched index) stops the run. A run
that is interrupted loses at most the files in hand; the next run carries on from there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.failures import check_unchanged, failure_reason, fatal_error, one_line
from indexer.locks import writer_lock
from indexer.manifest import check_manifest, write_manifest
from indexer.media import discover, display_path, stat_file
from indexer.pipeline import Executor, Extraction, FoundFile, IndexOptions, Job, LocalExecutor
from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Video
from models.errors import MediaError
from models.hub import ModelHub

__all__ = ["Indexer", "IndexRun", "FileResult", "IndexReport", "Decision", "Skip", "Move", "Hold", "Extract",
           "Commit", "Fail"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class FileResult:
    """One line of the report: what became of one file."""

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
    """What a run did: a :class:`FileResult` per file, the models it loaded, how long it took."""

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


# The decisions a step returns; IndexRun.apply carries them out.
@dataclass(frozen=True)
class Skip:
    """Indexed already: this path, unchanged, or the same bytes at a path that still exists."""

    reason: str
    duration: float


@dataclass(frozen=True)
class Move:
    """Indexed under a path that is gone: the catalog entry follows the file."""

    video: Video


@dataclass(frozen=True)
class Hold:
    """The same bytes are being extracted for another file of this run: wait for that one."""

    content_id: str


@dataclass(frozen=True)
class Extract:
    """New or changed: hand the file to the executor."""

    job: Job


@dataclass(frozen=True)
class Commit:
    """Extracted, and still the file that was read: write it to the catalog."""

    job: Job
    extraction: Extraction


@dataclass(frozen=True)
class Fail:
    """The file cannot be indexed: recorded with its stage and reason; the batch goes on."""

    stage: str
    reason: str


Decision = Skip | Move | Hold | Extract | Commit | Fail


@dataclass
class _Found:
    """A file of the run, and its line of the report in the making."""

    path: Path
    result: FileResult
    st: os.stat_result | None = None  # the file as the writer stat-ed it, before its bytes were read
    final: bool = False  # decided for good: reported once the step that decided it ends


class IndexRun:
    """The state of one indexing run, and its steps.

    ``hashing``, ``extracting`` and ``held`` are the files in hand: stat-ed and waiting for
    their content id, handed to the executor, and held back because a file with the same
    bytes is being extracted (it is never extracted twice).
    """

    def __init__(self, catalog: Catalog, derived: DerivedIndexes, options: IndexOptions, wanted: dict[str, Any],
                 run_id: int, total: int, *, progress: bool = False,
                 on_file: Callable[[int, int, FileResult], None] | None = None):
        from tqdm.auto import tqdm

        self.catalog, self.derived, self.options, self.wanted, self.run_id = catalog, derived, options, wanted, run_id
        self.total, self.on_file = total, on_file
        self.report = IndexReport()
        self.bar = tqdm(total=total, desc="videos", unit="video", disable=not progress, dynamic_ncols=True)
        self.hashing: dict[str, _Found] = {}
        self.extracting: dict[str, _Found] = {}
        self.held: dict[str, list[_Found]] = {}

    # -- the steps --------------------------------------------------------------------------------------------

    def jobs(self, files: Sequence[Path], executor: Executor) -> Iterator[Job]:
        """Steps 1 and 2: the files to extract, as jobs; every other file is decided and reported here."""
        for file, (cid, error, seconds) in executor.identify(self._found(files)):
            found = self.hashing.pop(file.path)
            found.result.seconds["identify"] = round(found.result.seconds["identify"] + seconds, 4)
            job = self.settle(found, "identify", partial(self._identified, found, cid, error))
            if job is not None:
                yield job

    def _identified(self, found: _Found, cid: str | None, error: str | None) -> Job | None:
        return self.apply(found, self.decide(found, cid) if cid else Fail("identify", error or "identify failed"))

    def _found(self, files: Sequence[Path]) -> Iterator[FoundFile]:
        for path in files:
            abspath = display_path(path.absolute())  # printable and storable even when the name is not UTF-8
            found = _Found(path, FileResult(path=abspath, status="failed", stage="identify"))
            file = self.settle(found, "identify", partial(self._look, found))
            if file is not None:
                yield file

    def _look(self, found: _Found) -> FoundFile:
        """Stat the file (before its bytes are read: a change from here on is noticed) and look its path up."""
        t0 = time.perf_counter()
        path, abspath = found.path, found.result.path
        if abspath != str(path.absolute()):
            raise MediaError(abspath, "the file name is not valid UTF-8; rename the file to index it")
        st = found.st = stat_file(path)
        known = self.catalog.video_by_path(abspath)
        found.result.seconds["identify"] = round(time.perf_counter() - t0, 4)
        self.hashing[abspath] = found
        cid = known.content_id if known is not None and known.same_file(st) else None  # unchanged: not hashed again
        return FoundFile(abspath, st.st_size, st.st_mtime_ns, cid)

    def decide(self, found: _Found, cid: str) -> Decision:
        """What to do with a file whose content id is known."""
        known = self._known(found, cid)
        if known is not None:
            return known
        if cid in self.held and not self.options.force:
            return Hold(cid)
        assert found.st is not None
        return Extract(Job(found.result.path, cid, found.st.st_size, found.st.st_mtime_ns))

    def _known(self, found: _Found, cid: str) -> Skip | Move | None:
        """The decision when the content is indexed already (and indexing is not forced), else None."""
        existing = self.catalog.video_by_content(cid)
        if existing is None or self.options.force:
            return None
        if existing.path == found.result.path:
            return Skip("unchanged", existing.duration)
        if not Path(existing.path).exists():
            return Move(existing)
        return Skip(f"same content as {existing.path}", existing.duration)

    def store(self, job: Job, extraction: Extraction) -> None:
        """Step 4: write one extraction, then settle the files that were held for it."""
        found = self.extracting.pop(job.path)
        if extraction.fatal:
            raise fatal_error(*extraction.fatal)
        found.result.seconds.update(extraction.seconds)
        found.result.duration = float(extraction.info.get("duration", 0.0))
        self.settle(found, "write", partial(self._write, found, job, extraction))
        for waiting in self.held.pop(job.content_id, []):  # its duplicates in this batch
            self.settle(waiting, "identify", partial(self._after_twin, waiting, job.content_id, found.result))
        _write_derived(self.derived, self.derived.maybe_flush)

    def _after_twin(self, found: _Found, cid: str, first: FileResult) -> None:
        """A file held back while another with the same bytes was extracted: found by its content now, or not."""
        self.apply(found, self._known(found, cid) or Fail(
            first.stage or "identify", f"same content as {first.path}, which was not indexed: {first.reason}"))

    def _write(self, found: _Found, job: Job, extraction: Extraction) -> None:
        if extraction.failure:
            self.apply(found, Fail(*extraction.failure))
            return
        assert found.st is not None
        t0 = time.perf_counter()
        try:
            check_unchanged(Path(job.path), found.st)
            # Another file of this batch with the same bytes may have been written meanwhile.
            self.apply(found, self._known(found, job.content_id) or Commit(job, extraction))
        finally:
            found.result.seconds["write"] = round(time.perf_counter() - t0, 4)

    # -- the decisions carried out, and the one failure guard -------------------------------------------------

    def apply(self, found: _Found, decision: Decision) -> Job | None:
        """Carry out ``decision`` about ``found``; the job to extract, if it is one."""
        result = found.result
        if isinstance(decision, Extract):
            self.held.setdefault(decision.job.content_id, [])
            self.extracting[result.path] = found
            return decision.job
        if isinstance(decision, Hold):
            self.held[decision.content_id].append(found)
            return None
        if isinstance(decision, Fail):
            result.status, result.stage, result.reason = "failed", decision.stage, one_line(decision.reason)
            self.catalog.record_failure(result.path, result.stage, result.reason, self.run_id)
        elif isinstance(decision, Commit):
            self._commit(found, decision.job, decision.extraction)
        else:
            if isinstance(decision, Move):
                assert found.st is not None
                video = decision.video
                self.catalog.move_video(video.id, result.path, found.st)
                moved = self.catalog.videos([video.id])[0]
                self.derived.apply(moved, self.catalog.moments_of(video.id), {}, flush=False)  # the title is searchable
                decision = Skip(f"moved from {video.path}", video.duration)
            result.status, result.duration, result.stage = "skipped", decision.duration, ""
            result.reason = decision.reason
            self.catalog.clear_failure(result.path)
        found.final = True
        return None

    def _commit(self, found: _Found, job: Job, extraction: Extraction) -> None:
        """Write one extraction to the catalog (one transaction), then to the derived indexes."""
        assert found.st is not None
        if extraction.vectors:
            for space, dim in extraction.dims.items():
                self.wanted["spaces"][space]["dim"] = dim
            check_manifest(self.catalog, self.wanted)
            write_manifest(self.catalog, self.wanted)
        added = self.catalog.add_video(content_id=job.content_id, path=job.path, stat=found.st, info=extraction.info,
                                       keyframes=extraction.keyframes, moments=extraction.moments,
                                       vectors=extraction.vectors, run_id=self.run_id)
        # Committed: from here on the video is indexed whatever happens to the derived indexes.
        result, moments = found.result, extraction.moments
        result.status, result.stage, result.reason = "indexed", "", ""
        result.moments, result.keyframes = len(moments), len(extraction.keyframes)
        result.language = extraction.info.get("language")
        for m, mid in zip(moments, added.moment_ids):
            m.id, m.video_id = mid, added.video_id
        vectors = {space: (added.moment_ids if owner == "moment" else added.keyframe_ids, matrix)
                   for space, (owner, matrix) in extraction.vectors.items()}
        _write_derived(self.derived, lambda: self.derived.apply(
            self.catalog.videos([added.video_id])[0], moments, vectors, replaced_videos=added.replaced_videos,
            replaced_vectors=added.replaced_vectors, flush=False))

    def settle(self, found: _Found, stage: str, step: Callable[[], T]) -> T | None:
        """Run one step for ``found`` under the run's one failure guard, and report the file once decided.

        An error about this file (unreadable, changed while read, a library failure on it)
        fails this file in ``stage``; the batch goes on. Any other
        :class:`~models.errors.VideoQAError` is raised: it stops the run.
        """
        outcome: T | None = None
        try:
            outcome = step()
        except Exception as exc:
            self.apply(found, Fail(stage, failure_reason(exc, found.result.path, stage)))
        if found.final:
            self._report(found.result)
        return outcome

    def _report(self, result: FileResult) -> None:
        self.report.results.append(result)
        if result.status == "failed":
            log.warning("%s: %s", result.path, result.reason)
        self.bar.update(1)
        self.bar.set_postfix_str(display_path(Path(result.path).name)[:30])
        if self.on_file is not None:
            self.on_file(len(self.report.results), self.total, result)

    def finish(self) -> None:
        """Record the run (also when it was interrupted) and write the derived indexes."""
        self.bar.close()
        report = self.report
        self.catalog.finish_run(self.run_id, report.count("indexed"), report.count("skipped"), report.count("failed"))
        _write_derived(self.derived, self.derived.flush)


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
        for space, model in ((TEXT_SPACE, self.hub.text_embedder), (IMAGE_SPACE, self.hub.frame_embedder)):
            if model is not None:
                manifest["spaces"][space] = {"model": model.model_name, "backend": model.backend_name}
        transcriber = self.hub.transcriber
        if transcriber is not None:
            manifest["transcriber"] = transcriber.model_name
        return manifest

    def index(self, paths: Sequence[Path], *, repair: bool = False,
              on_file: Callable[[int, int, FileResult], None] | None = None) -> IndexReport:
        """Index every video under ``paths``; never stops at a bad file.

        ``on_file(done, total, result)`` is called after each file (for live progress).
        """
        t0 = time.perf_counter()
        with writer_lock(self.index_dir), Catalog(self.index_dir) as catalog:
            wanted = self._wanted_manifest()
            check_manifest(catalog, wanted)
            derived = DerivedIndexes(catalog, self.options.vector_index, self.options.keyword_index)
            repaired = derived.make_usable(repair)  # only the writer repairs them; a search never does
            files = list(discover(paths))
            # Built once the lock is held: a second writer stops before starting any worker.
            executor = self._executor()
            run_id = catalog.start_run({"paths": [str(p) for p in paths], "profile": self.hub.profile,
                                        "executor": executor.name})
            run = IndexRun(catalog, derived, self.options, wanted, run_id, len(files), progress=self.progress,
                           on_file=on_file)
            run.report.repaired = repaired
            jobs = run.jobs(files, executor)
            try:
                with contextlib.closing(jobs), contextlib.closing(executor.run(jobs)) as results:
                    for job, extraction in results:  # step 3 runs in the executor
                        run.store(job, extraction)
                run.report.models_loaded = executor.models_loaded()
            finally:  # also when interrupted: the run records what it did
                run.finish()
                if executor is not self.executor:
                    executor.close()
        run.report.elapsed = time.perf_counter() - t0
        return run.report

    def _executor(self) -> Executor:
        """The executor given (an instance, or a function that makes one), else a local one."""
        if self.executor is None:
            return LocalExecutor(self.hub, self.options, progress=self.progress)
        if callable(self.executor) and not hasattr(self.executor, "run"):
            return self.executor()
        return self.executor


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
            log.exception("rebuilding the derived indexes failed; the next run (or videoqa index --repair) retries")
