"""Concurrency: one writer per index, searches while an indexer runs, the web UI asked 8 questions at once.

``videoqa index`` runs as a real process over a folder of narrated and silent videos. While it
runs, a second ``videoqa index`` on the same index stops at once with one line and exit code 5,
and two threads of this process search the index in a loop through one :class:`VideoQA`: every
search must succeed and be consistent with the catalog, and what they see only ever grows.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time
import traceback

import pytest

from app import VideoQA, load_settings
from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.locks import HOLDER_FILE, writer_lock
from models.errors import IndexLockedError
from retriever import NoIndexError, Retriever
from tests.conftest import ROOT, SAMPLE_MEDIA, ffmpeg
from tests.factories import KEYWORDS_ONLY, add_clip, new_index

# Indexed in this order: three silent clips (committed at once, no model needed), a narrated video
# (the indexer loads its models and transcribes it: seconds), three more silent clips.
NAMES = ["0_quiet_clip.mp4", "1_quiet_clip.mp4", "2_quiet_clip.mp4", "3_bicycle_repair.mp4", "4_quiet_clip.mp4",
         "5_quiet_clip.mp4", "6_quiet_clip.mp4"]
BROAD = "bicycle quiet"  # a word of every file's name: matches every indexed video
WRITER_DEADLINE = 300.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A narrated sample video between 2 s silent clips (each of its own content, found by its name)."""
    folder = tmp_path_factory.mktemp("concurrent-videos")
    for i, name in enumerate(NAMES):
        if "quiet" not in name:
            (folder / name).symlink_to(SAMPLE_MEDIA / name.split("_", 1)[1])
            continue
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "2", "-vf", f"hue=h={i * 50}",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(folder / name))
    return folder


class Searcher(threading.Thread):
    """Searches ``BROAD`` in a loop and checks every result against the catalog as it is then."""

    def __init__(self, qa: VideoQA, stop: threading.Event):
        super().__init__(daemon=True)
        self.qa, self.stop = qa, stop
        self.searches = 0
        self.errors: list[str] = []
        self.counts: list[int] = []  # videos in the catalog after each search
        self.found: list[set[str]] = []  # videos each search found
        self.writer_done = threading.Event()  # set by the test when the indexer has exited
        self.after_writer = 0  # searches begun after that

    def run(self) -> None:
        while not self.stop.is_set():
            time.sleep(0.05)  # leave the indexer some CPU on a small machine
            after = self.writer_done.is_set()
            try:
                hits = self.qa.search(BROAD, top_k=20)
            except NoIndexError:
                if self.found:  # there was an index: it cannot be gone
                    self.errors.append(traceback.format_exc())
                time.sleep(0.05)
                continue
            except Exception:  # noqa: BLE001 - every failure is reported by the test
                self.errors.append(traceback.format_exc())
                continue
            self.searches += 1
            try:
                self.check(hits)
            except AssertionError:
                self.errors.append(traceback.format_exc())
            self.after_writer += after

    def check(self, hits) -> None:
        with Catalog(self.qa.index_dir, readonly=True) as catalog:  # read after the search: it can only have grown
            videos = {v.id: v for v in catalog.videos()}
            for hit in hits:
                assert hit.video_id in videos and videos[hit.video_id].name == hit.name, hit.name
                rows = catalog.moments([m.id for m in hit.moments if m.id is not None])
                for m in hit.moments:
                    if m.kind == "keyframe":
                        continue
                    row = rows[m.id]
                    assert (row.video_id, row.text, row.start) == (hit.video_id, m.text, m.start), (hit.name, m)
        found = {h.name for h in hits}
        if self.counts:
            assert len(videos) >= self.counts[-1], (len(videos), self.counts[-1])
            assert found >= self.found[-1], (found, self.found[-1])  # nothing found before is lost
        self.counts.append(len(videos))
        self.found.append(found)


@pytest.fixture
def one_thread():
    """Torch on one thread in this process: the indexer needs the other core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_searches_during_indexing_and_a_second_writer(videos, tmp_path, hub, one_thread, engine):
    index_dir = tmp_path / "index"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEOQA_INDEX_DIR": str(index_dir), "VIDEOQA_PROFILE": "packaged",
           "VIDEOQA_KEYWORD_ENGINE": engine}
    command = [sys.executable, "-m", "app", "index", str(videos), "--no-progress"]
    writer = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    qa = VideoQA(load_settings({"index_dir": str(index_dir), "profile": "packaged", "keyword_engine": engine},
                               env={}), hub=hub)
    qa.warm_up()  # as `videoqa serve` does: the query model is loaded before the first question
    searchers = [Searcher(qa, stop) for _ in range(2)]
    try:
        for s in searchers:
            s.start()

        if engine == "whoosh":  # (the lock does not depend on the engine)
            # A second writer, once the first holds the lock: one line, exit code 5, at once.
            holder, deadline = index_dir / HOLDER_FILE, time.monotonic() + 120
            while not (holder.exists() and f"pid {writer.pid}" in holder.read_text()):
                assert writer.poll() is None and time.monotonic() < deadline, "the indexer never took the lock"
                time.sleep(0.05)
            second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert writer.poll() is None, "the first indexer finished before the second one stopped"
            assert (second.returncode, second.stdout) == (IndexLockedError.exit_code, "")
            assert second.stderr == (f"videoqa: error: {index_dir} is being written by videoqa index "
                                     f"(pid {writer.pid}); wait for it to finish, then run again\n")

        out, err = writer.communicate(timeout=WRITER_DEADLINE)
        assert writer.returncode == 0, err
        assert f"{len(NAMES)} indexed, 0 skipped, 0 failed" in out
        for s in searchers:
            s.writer_done.set()
        deadline = time.monotonic() + 60
        while any(s.after_writer < 2 for s in searchers) and time.monotonic() < deadline:
            time.sleep(0.1)  # until each has searched the finished index twice
    finally:
        stop.set()
        for s in searchers:
            s.join(timeout=60)
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    errors = [e for s in searchers for e in s.errors]
    assert not errors, f"{len(errors)} searches failed; the first:\n{errors[0]}"
    counts = sorted({c for s in searchers for c in s.counts})
    assert all(s.searches >= 3 for s in searchers), [s.searches for s in searchers]
    assert counts[0] < len(NAMES) == counts[-1], counts  # a partial library during the run, then the whole
    assert all(s.found[-1] == set(NAMES) for s in searchers), [sorted(s.found[-1]) for s in searchers]
    assert qa.retriever.index_kinds()["keywords"] == engine


@pytest.mark.slow
@pytest.mark.parametrize("engine, commits", [("whoosh", 150), ("tantivy", 40)])
def test_searches_survive_a_writer_committing_fast(tmp_path, hub, engine, commits):
    """A writer commits a video after another (each Whoosh commit replaces its table of contents and
    may merge segments) while fresh Retrievers open the index and search it, as fast as they can."""
    new_index(tmp_path, engine)
    done, errors = threading.Event(), []

    def write() -> None:
        try:
            with writer_lock(tmp_path), Catalog(tmp_path) as catalog:
                derived = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
                for i in range(commits):
                    add_clip(catalog, i, derived)
        except Exception:  # noqa: BLE001 - reported below
            errors.append(traceback.format_exc())
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    searches, seen = 0, 0
    while not done.is_set() or searches == 0:
        retriever = Retriever(tmp_path, hub, KEYWORDS_ONLY)
        try:
            hits = retriever.search("clip lava", top_k=1000)
            assert len(hits) >= seen, (len(hits), seen)  # never fewer than a search before saw
            seen = len(hits)
            searches += 1
        except Exception:  # noqa: BLE001 - reported below
            errors.append(traceback.format_exc())
        finally:
            retriever.close()
    writer.join()
    assert not errors, f"{len(errors)} failures; the first:\n{errors[0]}"
    assert searches > 10 and len(Retriever(tmp_path, hub, KEYWORDS_ONLY).search("clip lava", top_k=1000)) == commits


def test_a_failed_open_during_indexing_is_tried_again(tmp_path, hub, monkeypatch):
    """The derived files lag behind the catalog and an indexer holds the lock: the Retriever searches
    what they hold and says they are stale; an open that fails meanwhile (a file replaced as it was
    read) is tried again."""
    new_index(tmp_path, "whoosh")
    with Catalog(tmp_path) as catalog:
        add_clip(catalog, 0, DerivedIndexes(catalog))
        add_clip(catalog, 1)  # in the catalog, not yet in the derived indexes
    real, calls = DerivedIndexes.loads, []

    def flaky(self) -> bool:
        calls.append(1)
        return len(calls) > 3 and real(self)

    monkeypatch.setattr(DerivedIndexes, "loads", flaky)
    retriever = Retriever(tmp_path, hub, KEYWORDS_ONLY)
    with writer_lock(tmp_path):
        hits = retriever.search("clip lava", top_k=10)
    assert [h.name for h in hits] == ["clip_0.mp4"] and len(calls) == 4  # 3 failed tries, then one that opens
    assert retriever.stale


def test_an_index_being_created_is_no_index_yet(tmp_path, hub):
    """A search in the moment an indexer has created the catalog file but not its tables yet."""
    sqlite3.connect(tmp_path / Catalog.FILENAME).close()  # an empty SQLite file
    qa = VideoQA(load_settings({"index_dir": str(tmp_path), "profile": "packaged"}, env={}), hub=hub)
    with pytest.raises(NoIndexError, match="not ready yet"):
        qa.search("lava")


@pytest.mark.slow
def test_web_ui_answers_8_questions_at_once(web_server):
    """Eight clients ask at the same moment; each gets its own right answer."""
    from gradio_client import Client

    questions = [
        ("ask not what your country can do for you", "field_day_with_speech.mp4"),
        ("what you can do for your country", "field_day_with_speech.mp4"),
        ("what flows down the slopes of a volcano during an eruption", "volcano_lecture.mp4"),
        ("how do I fix a flat tire", "bicycle_repair.mp4"),
        ("which planet has rings", "solar_system.mp4"),
        ("what goes into bread dough", "bread_baking.mp4"),
        ("my fellow Americans", "field_day_with_speech.mp4"),
        ("lava and ash", "volcano_lecture.mp4"),
    ]
    clients = [Client(web_server.url, verbose=False) for _ in questions]
    start = threading.Barrier(len(questions))
    answers: dict[int, str] = {}
    failures: list[str] = []

    def ask(i: int) -> None:
        try:
            start.wait(timeout=60)
            answers[i] = clients[i].predict(questions[i][0], api_name="/ask")[0]
        except Exception:  # noqa: BLE001 - reported below
            failures.append(traceback.format_exc())

    t0 = time.monotonic()
    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    elapsed = time.monotonic() - t0
    assert not failures, failures[0]
    assert len(answers) == len(questions) and elapsed < 180, (sorted(answers), elapsed)
    for i, (question, video) in enumerate(questions):
        assert f"{video} @ " in answers[i], (question, answers[i][:300])
