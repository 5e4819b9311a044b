"""Index a folder of videos: identify, keyframes, speech, vectors, catalog, derived indexes.

One :class:`Indexer` per index directory and process; a file lock keeps a second
writer out. Each file goes through the stages in memory and is committed to the
catalog in one transaction, so an interrupted run loses at most the file in hand and
the next run carries on from there. A file that fails is recorded with its reason
and the batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from indexer.catalog import Catalog
from indexer.keyframes import KeyframeOptions, extract_keyframes
from indexer.media import SAMPLE_RATE, content_id, decode_audio, discover, display_path, probe, stat_file
from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Keyframe, Moment
from indexer.speech import SpeechOptions, group_moments, main_language, transcribe_speech
from indexer.store import (
    DerivedIndexes, KeywordOptions, VectorIndexOptions, check_manifest, write_manifest, writer_lock,
)
from models.errors import MediaError, VideoQAError
from models.hub import ModelHub

__all__ = ["IndexOptions", "FileResult", "IndexReport", "Indexer", "STAGES"]

log = logging.getLogger(__name__)

STAGES = ("identify", "probe", "keyframes", "visual", "audio", "speech", "describe", "embed", "write")


@dataclass(frozen=True)
class IndexOptions:
    keyframes: KeyframeOptions = KeyframeOptions()
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
        self.bar = tqdm(total=len(STAGES), desc=name[:40], unit="stage", leave=False, position=1,
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


class Indexer:
    """Indexes video files into ``index_dir`` with the models of ``hub``."""

    def __init__(self, index_dir: Path, hub: ModelHub, options: IndexOptions = IndexOptions(),
                 *, progress: bool = False):
        self.index_dir = Path(index_dir)
        self.hub = hub
        self.options = options
        self.progress = progress

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
            run_id = catalog.start_run({"paths": [str(p) for p in paths], "profile": self.hub.profile})
            bar = tqdm(files, desc="videos", unit="video", disable=not self.progress, dynamic_ncols=True)
            try:
                for path in bar:
                    bar.set_postfix_str(display_path(path.name)[:30])
                    result = self._index_one(path, catalog, derived, wanted, run_id)
                    report.results.append(result)
                    if result.status == "failed":
                        log.warning("%s: %s", result.path, result.reason)
                    if on_file is not None:
                        on_file(len(report.results), len(files), result)
            finally:  # also when interrupted: the run records what it did
                bar.close()
                catalog.finish_run(run_id, report.count("indexed"), report.count("skipped"), report.count("failed"))
        report.models_loaded = self.hub.loaded()
        report.elapsed = time.perf_counter() - t0
        return report

    def _index_one(self, path: Path, catalog: Catalog, derived: DerivedIndexes,
                   wanted: dict[str, Any], run_id: int) -> FileResult:
        abspath = display_path(path.absolute())  # printable and storable even when the name is not UTF-8
        result = FileResult(path=abspath, status="failed")
        stages = _Stages(display_path(path.name), self.progress)
        try:
            with stages.stage("identify"):
                if abspath != str(path.absolute()):
                    raise MediaError(abspath, "the file name is not valid UTF-8; rename the file to index it")
                st = stat_file(path)  # before the bytes are read: a change from here on is noticed
                known = catalog.video_by_path(abspath)
                cid = known.content_id if known and known.same_file(st) else content_id(path)
            existing = catalog.video_by_content(cid)
            if existing is not None and not self.options.force:
                result.status, result.duration = "skipped", existing.duration
                if existing.path == abspath:
                    result.reason = "unchanged"
                elif not Path(existing.path).exists():
                    catalog.move_video(existing.id, abspath, st)
                    video = catalog.videos([existing.id])[0]
                    derived.apply(video, catalog.moments_of(video.id), {})  # the title is searchable
                    result.reason = f"moved from {existing.path}"
                else:
                    result.reason = f"same content as {existing.path}"
                catalog.clear_failure(abspath)
                return result
            with stages.stage("probe"):
                info = probe(path)
                result.duration = info.duration
            with stages.stage("keyframes"):
                keyframes = extract_keyframes(path, self.options.keyframes)
            vectors: dict[str, tuple[str, np.ndarray]] = {}
            with stages.stage("visual"):
                frame_embedder = self.hub.get("frame_embedder")
                if frame_embedder is not None:
                    vectors[IMAGE_SPACE] = ("keyframe", frame_embedder.embed_images(_rgb(keyframes)))
                    wanted["spaces"][IMAGE_SPACE]["dim"] = frame_embedder.dim
            with stages.stage("audio"):
                audio = decode_audio(path, SAMPLE_RATE) if info.has_audio else np.zeros(0, np.float32)
            with stages.stage("speech"):
                segments = []
                if audio.size:
                    segments = transcribe_speech(audio, self.hub.require("voice_activity"),
                                                 self.hub.require("transcriber"), self.options.speech)
                moments = group_moments(segments, self.options.moment_max_seconds, self.options.moment_max_gap)
            with stages.stage("describe"):
                describer = self.hub.get("describer")
                if describer is not None:
                    moments += self._describe(describer, path, info.duration)
                embedder = self.hub.get("text_embedder")
                if embedder is not None and moments:
                    vectors[TEXT_SPACE] = ("moment", embedder.embed_documents([m.text for m in moments]))
                    wanted["spaces"][TEXT_SPACE]["dim"] = embedder.dim
            with stages.stage("write"):
                _check_unchanged(path, st)
                if vectors:
                    check_manifest(catalog, wanted)
                    write_manifest(catalog, wanted)
                media = {"duration": info.duration, "fps": info.fps, "width": info.width, "height": info.height,
                         "has_audio": info.has_audio, "language": main_language(segments)}
                added = catalog.add_video(content_id=cid, path=abspath, stat=st, info=media, keyframes=keyframes,
                                          moments=moments, vectors=vectors, run_id=run_id)
                # Committed: from here on the video is indexed whatever happens to the derived indexes.
                result.status = "indexed"
                result.moments, result.keyframes, result.language = len(moments), len(keyframes), media["language"]
                for m, mid in zip(moments, added.moment_ids):
                    m.id, m.video_id = mid, added.video_id
                video = catalog.videos([added.video_id])[0]
                try:
                    derived.apply(
                        video, moments,
                        {space: (added.moment_ids if owner == "moment" else added.keyframe_ids, matrix)
                         for space, (owner, matrix) in vectors.items()},
                        replaced_videos=added.replaced_videos, replaced_vectors=added.replaced_vectors,
                    )
                except Exception as exc:  # the catalog has it; derived.json stays behind until rebuilt
                    log.warning("%s: keyword/vector index update failed (%s); rebuilding them from the catalog",
                                abspath, exc)
                    try:
                        derived.rebuild()
                    except Exception:
                        log.exception("rebuilding the derived indexes failed; the next run or search retries")
        except MediaError as exc:
            result.reason, result.stage = _one_line(exc.problem), stages.current
            catalog.record_failure(abspath, stages.current, result.reason, run_id)
        except VideoQAError:
            raise  # a missing model or a mismatched index stops the run: every file would fail
        except Exception as exc:  # a bug or a library failure on this file: record it, go on
            log.debug("%s failed in stage %s", abspath, stages.current, exc_info=True)
            result.reason = _one_line(f"{stages.current} failed: {type(exc).__name__}: {exc}")
            result.stage = stages.current
            catalog.record_failure(abspath, stages.current, result.reason, run_id)
        finally:
            stages.close()
            result.seconds = stages.seconds
        return result

    def _describe(self, describer: Any, path: Path, duration: float) -> list[Moment]:
        """A description of the whole video, and of each window when ``describe_window`` is set."""
        spans = [(0.0, duration)]
        step = self.options.describe_window
        if step > 0 and duration > step:
            spans += [(s, min(s + step, duration)) for s in np.arange(0.0, duration, step) if duration - s > 0.5]
        moments = []
        for start, end in spans:
            whole = (start, end) == (0.0, duration)
            text = describer.describe(path, None if whole else float(start), None if whole else float(end))
            if text.strip():
                moments.append(Moment(float(start), float(end), "description", text.strip()))
        return moments


def _one_line(text: str, limit: int = 300) -> str:
    """An error message on one line (library messages can span several), not too long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    """Raise :class:`MediaError` when the file is no longer what was read at the start.

    Size, modification time and inode are compared, as ``make`` and ``rsync`` do: a file
    still being copied or recorded, or replaced meanwhile, must not be stored as a mix of
    its old and new bytes. It is recorded as failed, and the next run reads it again.
    """
    try:
        now = path.stat()
    except OSError as exc:
        raise MediaError(path, f"the file disappeared while it was being indexed ({exc.strerror or exc})") from exc
    if (now.st_size, now.st_mtime_ns, now.st_ino, now.st_dev) != (before.st_size, before.st_mtime_ns,
                                                                   before.st_ino, before.st_dev):
        what = (f"it grew from {before.st_size} to {now.st_size} bytes" if now.st_size > before.st_size
                else f"its size went from {before.st_size} to {now.st_size} bytes" if now.st_size != before.st_size
                else "it was replaced" if now.st_ino != before.st_ino else "it was written to")
        raise MediaError(path, f"the file changed while it was being indexed ({what}); "
                               "index it again once it is complete")


def _rgb(keyframes: Sequence[Keyframe]) -> list[np.ndarray]:
    """The keyframes' thumbnails as RGB arrays (what the image models read)."""
    import cv2

    return [cv2.cvtColor(cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for k in keyframes]
