"""Readers read: a search never takes the writer lock and never writes a file.

Keyword and vector indexes behind the catalog are searched as they are (and the Retriever
says so); when there is nothing it can search, the error names ``videoqa index --repair``.
Only the writer (``videoqa index``, ``--repair``, ``videoqa serve`` at start-up) rebuilds them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app import VideoQA, load_settings
from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.locks import HOLDER_FILE, writer_lock
from models.errors import IndexLockedError
from retriever import IndexNeedsRepairError, Retriever
from tests.conftest import ROOT
from tests.factories import KEYWORDS_ONLY, add_clip, new_index

HOLD = """if True:
    import sys
    from pathlib import Path
    from indexer.locks import writer_lock
    with writer_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()  # held until the test closes stdin
"""


@pytest.fixture
def lock_holder():
    """Start another process that holds an index's writer lock until the test ends."""
    procs: list[subprocess.Popen] = []

    def hold(index_dir: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(index_dir)], cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def files(index_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Every file of the index with (size, mtime, inode): any write shows. SQLite's shared-memory
    and log files are left out: a read-only connection to a WAL database maps them (SQLite's
    business, not a write of ours)."""
    return {p.relative_to(index_dir).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(index_dir.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def stale_index(index_dir: Path, engine: str = "whoosh") -> None:
    """Two clips: the first in the keyword index, the second committed to the catalog only (as when
    an indexer died between the two, or is about to write it)."""
    new_index(index_dir, engine)
    with Catalog(index_dir) as catalog:
        add_clip(catalog, 0, DerivedIndexes(catalog, keyword_options=KeywordOptions(engine)))
        add_clip(catalog, 1)


def search_in_thread(retriever: Retriever, query: str) -> list:
    """The search, in a thread that must finish (a search that waited for the lock would not)."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["hits"] = retriever.search(query, top_k=10)
        except Exception as exc:  # noqa: BLE001 - raised again below
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the search blocked while another process held the writer lock"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["hits"]  # type: ignore[return-value]


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_a_search_of_stale_indexes_neither_blocks_nor_writes_while_another_process_holds_the_lock(
        tmp_path, hub, lock_holder, caplog, engine):
    stale_index(tmp_path, engine)
    holder = lock_holder(tmp_path)
    before = files(tmp_path)
    with Catalog(tmp_path, readonly=True) as catalog:
        assert catalog.count_videos() == 2 and not DerivedIndexes(catalog).is_current()

    retriever = Retriever(tmp_path, hub, KEYWORDS_ONLY)
    try:
        hits = search_in_thread(retriever, "clip lava")
        assert [h.name for h in hits] == ["clip_0.mp4"]  # what the keyword index holds, not the new clip
        assert retriever.index_kinds()["keywords"] == engine
        assert retriever.stale  # and it says so, on the Retriever and in the log
        assert [r.levelname for r in caplog.records if "behind its catalog" in r.getMessage()] == ["WARNING"]
    finally:
        retriever.close()
    assert files(tmp_path) == before  # nothing written: no rebuild, no lock file touched
    assert (tmp_path / HOLDER_FILE).read_text() == f"videoqa index (pid {holder.pid})"
    with pytest.raises(IndexLockedError, match=f"pid {holder.pid}"):  # the other process still holds it
        with writer_lock(tmp_path):
            pass


def test_nothing_searchable_is_an_error_naming_repair_and_only_the_writer_repairs(tmp_path, hub, lock_holder):
    stale_index(tmp_path)
    shutil.rmtree(tmp_path / "whoosh")  # every derived file lost
    holder = lock_holder(tmp_path)
    before = files(tmp_path)
    retriever = Retriever(tmp_path, hub, KEYWORDS_ONLY)
    with pytest.raises(IndexNeedsRepairError, match="no keyword or vector index.*videoqa index --repair"):
        search_in_thread(retriever, "clip lava")
    assert files(tmp_path) == before
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0

    qa = VideoQA(load_settings({"index_dir": str(tmp_path), "profile": "packaged"}, env={}), hub=hub)
    qa.repair()  # the writer: videoqa index --repair
    hits = retriever.search("clip lava", top_k=10)
    assert sorted(h.name for h in hits) == ["clip_0.mp4", "clip_1.mp4"] and not retriever.stale


def test_a_damaged_file_is_an_error_naming_repair_and_serve_repairs_it_at_start(tmp_path, hub):
    stale_index(tmp_path)
    with writer_lock(tmp_path), Catalog(tmp_path) as catalog:  # the writer brings them up to date...
        assert DerivedIndexes(catalog).make_usable()
    for toc in (tmp_path / "whoosh").glob("_MAIN_*.toc"):
        toc.write_bytes(b"written over by something else")  # ...then something else damages them
    before = files(tmp_path)
    retriever = Retriever(tmp_path, hub, KEYWORDS_ONLY)
    with pytest.raises(IndexNeedsRepairError, match="does not open.*videoqa index --repair"):
        retriever.search("clip lava")
    assert files(tmp_path) == before

    qa = VideoQA(load_settings({"index_dir": str(tmp_path), "profile": "packaged"}, env={}), hub=hub)
    qa.ensure_index()  # what `videoqa serve` does at start-up, as the writer
    hits = retriever.search("clip lava", top_k=10)
    assert sorted(h.name for h in hits) == ["clip_0.mp4", "clip_1.mp4"] and not retriever.stale
