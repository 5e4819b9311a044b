"""Crash safety: ``videoqa index`` killed with SIGKILL at random moments, then checked.

After every kill: the catalog opens and is intact; every video in it is complete (no
half-indexed video is visible to search); the FAISS and Whoosh files agree with the
catalog whenever ``derived.json`` says they are current; when they do not, a search reads
what they hold, says they are stale and writes nothing, and the writer's start-up check
(what the next ``videoqa index`` does first) rebuilds them. Then a last run finishes the
rest without redoing what was done, and ``videoqa index --repair`` rebuilds the derived
indexes from the catalog.

The kills are seeded (``VIDEOQA_CRASH_SEED`` picks another sequence) and bounded in time.
Each comes either at a random moment of the run's first seconds (imports, locking, the
start-up check of the derived indexes, quick files, models loading) or a random fraction
of a second after the run commits a video (the catalog's generation goes up), when the
FAISS and Whoosh files are being updated: the moment a crash could leave them behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.catalog import Catalog
from indexer.schema import TEXT_SPACE
from indexer.derived import DerivedIndexes
from indexer.locks import writer_lock
from tests.conftest import SAMPLE_MEDIA, ffmpeg

ROOT = Path(__file__).resolve().parents[2]

KILLS = 10
EARLY = (1.0, 6.0)  # a kill this many seconds after the run started...
AFTER_COMMIT = (0.0, 0.5)  # ...or this many seconds after it committed a video
AFTER_COMMIT_SHARE = 0.5
MAX_WAIT = 20.0  # for a commit; then the kill comes anyway
DEADLINE = 240.0  # for the whole kill loop (it takes about a minute on two cores)
SEED = int(os.environ.get("VIDEOQA_CRASH_SEED", "20240611"))
SPEECH = ["bicycle_repair.mp4", "solar_system.mp4", "volcano_lecture.mp4"]


def add_quiet(folder: Path, name: str, kinds: dict[str, str]) -> None:
    """A 2 s silent clip of its own content (no model needed: indexed within milliseconds)."""
    hue = len(kinds) * 37 % 360
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "2", "-vf", f"hue=h={hue}:s=1.5",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(folder / name))
    kinds[name] = "quiet"


def add_speech(folder: Path, name: str, kinds: dict[str, str]) -> None:
    """A narrated sample video (models load, then Whisper runs); a copy with other bytes when it is
    already in the folder (the same streams with another title: another content id)."""
    sample = SPEECH[sum(kind != "quiet" for kind in kinds.values()) % len(SPEECH)]
    if sample not in kinds.values():
        (folder / name).symlink_to(SAMPLE_MEDIA / sample)
    else:
        ffmpeg("-i", str(SAMPLE_MEDIA / sample), "-map", "0", "-c", "copy", "-metadata", f"title={name}",
               str(folder / name))
    kinds[name] = sample


def make_folder(folder: Path) -> dict[str, str]:
    """Quick silent clips between narrated videos, so that commits come both early and late in a
    run. Returns {file name: "quiet" or the sample video it narrates}."""
    folder.mkdir()
    kinds: dict[str, str] = {}
    for i in range(6):
        add_quiet(folder, f"{i}a_quiet.mp4", kinds)
        add_quiet(folder, f"{i}b_quiet.mp4", kinds)
        add_speech(folder, f"{i}c_speech.mp4", kinds)
    return kinds


def _integrity(index_dir: Path) -> str:
    path = index_dir / Catalog.FILENAME
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _generation(index_dir: Path) -> int:
    """The catalog's generation as another process sees it (0 before there is one)."""
    path = index_dir / Catalog.FILENAME
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)) as db:
            row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    except sqlite3.Error:  # being created
        return 0
    return int(row[0]) if row else 0


def _env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **settings_env, "HF_HUB_OFFLINE": "1"}


def _index_cmd(folder: Path, index_dir: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "app", "index", str(folder), "--index-dir", str(index_dir), "--no-progress", *more]


def derived_state(index_dir: Path) -> tuple[set[int], set[str]]:
    """(FAISS ids of the text space, Whoosh document keys) as they are on disk."""
    import faiss
    from whoosh import index as windex

    path = index_dir / f"faiss-{TEXT_SPACE}.index"
    ids: set[int] = set()
    if path.exists():  # a flat index with an id map (a few vectors never make an IVF index)
        index = faiss.read_index(str(path))  # kept alive while its id map is read
        ids = set(faiss.vector_to_array(index.id_map).tolist())
    keys: set[str] = set()
    if windex.exists_in(str(index_dir / "whoosh")):
        ix = windex.open_dir(str(index_dir / "whoosh"))
        with ix.searcher() as s:
            keys = {fields["key"] for fields in s.all_stored_fields()}
    return ids, keys


def catalog_state(catalog: Catalog) -> tuple[set[int], set[str]]:
    """What the derived indexes must hold: (text vector ids, Whoosh keys)."""
    ids, _ = catalog.vectors(TEXT_SPACE)
    keys = set()
    for video in catalog.videos():
        keys.add(f"v{video.id}")
        keys.update(f"m{m.id}" for m in catalog.moments_of(video.id))
    return set(ids.tolist()), keys


def check_complete(catalog: Catalog, kinds: dict[str, str], truth: dict[str, dict]) -> None:
    """Every video in the catalog is whole: keyframes, all its moments, one vector per moment."""
    vector_ids, _ = catalog.vectors(TEXT_SPACE)
    vector_ids = set(vector_ids.tolist())
    for video in catalog.videos():
        kind = kinds[video.name]
        assert catalog.keyframes_of(video.id), video.name
        moments = catalog.moments_of(video.id)
        assert {m.id for m in moments} <= vector_ids, video.name
        if kind == "quiet":
            assert moments == [], video.name
            continue
        sentences = truth[kind]["narration"]
        text = " ".join(m.text.lower() for m in moments)
        assert truth[kind]["keywords"][0] in text, (video.name, text)
        # The last sentence is there: the transcript was not cut short.
        assert moments[-1].end >= sentences[-1]["start"], (video.name, [(m.start, m.end) for m in moments])


def derived_files(index_dir: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every keyword and vector file and of derived.json: any write shows."""
    paths = [index_dir / "derived.json", *index_dir.glob("faiss-*.index"), *index_dir.glob("whoosh/*")]
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths if p.is_file()}


def check_after_kill(index_dir: Path, hub, kinds, truth) -> str:
    """The checks after one kill; returns what was found (for the summary)."""
    from retriever import IndexNeedsRepairError, Retriever

    if not (index_dir / Catalog.FILENAME).exists():
        return "no catalog yet"
    with Catalog(index_dir, readonly=True) as catalog:
        videos = catalog.count_videos()
        assert _integrity(index_dir) == "ok"
        check_complete(catalog, kinds, truth)
        current = DerivedIndexes(catalog).is_current()
        want = catalog_state(catalog)
        known = {v.id for v in catalog.videos()}
        if current:  # derived.json claims they reflect the catalog: they must
            assert derived_state(index_dir) == want
    before = derived_files(index_dir)
    retriever = Retriever(index_dir, hub)
    try:
        hits = retriever.search("volcano magma lava eruption bicycle tire planets orbit", top_k=10)
    except IndexNeedsRepairError as exc:  # killed before it wrote any: nothing to search, and it says so
        assert not current and "no keyword or vector index" in str(exc), str(exc)
    else:
        assert {h.video_id for h in hits} <= known
        assert retriever.stale == (not current)
    finally:
        retriever.close()
    assert derived_files(index_dir) == before  # the search rebuilt nothing
    with writer_lock(index_dir), Catalog(index_dir) as catalog:  # as the next `videoqa index` starts
        assert DerivedIndexes(catalog).make_usable() == (not current and videos > 0)
        assert derived_state(index_dir) == catalog_state(catalog) == want
        assert DerivedIndexes(catalog).is_current()
    return f"{videos} videos, derived indexes {'current' if current else 'stale, searched as they were, rebuilt'}"


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, settings_env, hub):
    """Kill ``videoqa index`` at seeded random moments over a folder; returns what the loop saw."""
    base = tmp_path_factory.mktemp("crash")
    folder = base / "videos"
    kinds = make_folder(folder)
    truth = {v["file"]: v for v in json.loads((SAMPLE_MEDIA / "ground_truth.json").read_text())["videos"]}
    index_dir = base / "index"
    rng = random.Random(SEED)
    env = _env(settings_env)
    kills: list[str] = []
    finished: list[int] = []  # exit codes of the runs that ended before their moment came
    logs: list[str] = []
    start = time.monotonic()
    plan = None
    while len(kills) < KILLS and time.monotonic() - start < DEADLINE:
        if plan is None:
            after_commit = rng.random() < AFTER_COMMIT_SHARE
            plan = after_commit, rng.uniform(*(AFTER_COMMIT if after_commit else EARLY))
        after_commit, offset = plan
        generation = _generation(index_dir)
        log = base / f"run{len(logs)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(_index_cmd(folder, index_dir), env=env, cwd=ROOT, stdout=out, stderr=out,
                                    start_new_session=True)
            t0 = time.monotonic()
            kill_at = None if after_commit else t0 + offset
            while proc.poll() is None:
                now = time.monotonic()
                if kill_at is None and (_generation(index_dir) > generation or now - t0 > MAX_WAIT):
                    kill_at = now + offset
                if kill_at is not None and now >= kill_at:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
            code = proc.wait()
        logs.append(log.read_text())
        if code == -signal.SIGKILL:
            when = f"{offset:.2f} s after {'a commit' if after_commit else 'the start'}"
            kills.append(f"{when}: {check_after_kill(index_dir, hub, kinds, truth)}")
            plan = None
        else:  # it finished first: give the next run more to do, and try the same moment again
            finished.append(code)
            add_quiet(folder, f"{len(kinds)}_added_quiet.mp4", kinds)
            add_speech(folder, f"{len(kinds)}_added_speech.mp4", kinds)
    return {"folder": folder, "index_dir": index_dir, "kinds": kinds, "truth": truth, "kills": kills,
            "finished": finished, "logs": logs, "env": env}


@pytest.mark.slow
def test_kills_leave_a_consistent_index(crashed):
    assert len(crashed["kills"]) >= KILLS, crashed["kills"]  # each was checked by check_after_kill
    assert all(code == 0 for code in crashed["finished"]), crashed["finished"]
    for log in crashed["logs"]:  # not even the killed runs met an error before their end
        assert "Traceback" not in log and "ERROR" not in log, log


@pytest.mark.slow
def test_a_new_run_finishes_the_rest_without_redoing(crashed, hub):
    index_dir, kinds = crashed["index_dir"], crashed["kinds"]
    with Catalog(index_dir, readonly=True) as catalog:
        before = {v.name: v.id for v in catalog.videos()}
    proc = subprocess.run(_index_cmd(crashed["folder"], index_dir, "--json"), env=crashed["env"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    report = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    assert sorted(report) == sorted(kinds)
    for name, f in report.items():
        if name in before:
            assert (f["status"], f["reason"]) == ("skipped", "unchanged"), f
        else:
            assert f["status"] == "indexed", f
    with Catalog(index_dir, readonly=True) as catalog:
        after = {v.name: v.id for v in catalog.videos()}
        assert sorted(after) == sorted(kinds)
        assert {n: after[n] for n in before} == before  # finished videos were not indexed again
        check_complete(catalog, kinds, crashed["truth"])
        assert DerivedIndexes(catalog).is_current()
        assert derived_state(index_dir) == catalog_state(catalog)
        assert catalog.failures() == []

    from retriever import Retriever

    retriever = Retriever(index_dir, hub)
    try:
        for name, kind in kinds.items():
            if kind != "quiet":
                hits = retriever.search(" ".join(crashed["truth"][kind]["keywords"]), top_k=1)
                assert hits and kinds[hits[0].name] == kind, (name, hits[:1])
    finally:
        retriever.close()


@pytest.mark.slow
def test_repair_rebuilds_the_derived_indexes(crashed, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(crashed["index_dir"], index_dir)
    with Catalog(index_dir, readonly=True) as catalog:
        want = catalog_state(catalog)
    assert want[0] and want[1]
    # Damage that derived.json cannot see: the files lost or garbled, the state still "current".
    shutil.rmtree(index_dir / "whoosh")
    (index_dir / f"faiss-{TEXT_SPACE}.index").write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "app", "index", "--repair", "--index-dir", str(index_dir)],
                          env=crashed["env"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith(f"rebuilt the keyword and vector indexes of {index_dir} from the catalog")
    assert derived_state(index_dir) == want
    with Catalog(index_dir, readonly=True) as catalog:
        assert DerivedIndexes(catalog).is_current()


@pytest.mark.slow
def test_missing_derived_files_are_an_error_naming_repair_and_the_next_run_rebuilds_them(crashed, tmp_path, hub):
    from retriever import IndexNeedsRepairError, Retriever

    index_dir = tmp_path / "index"
    shutil.copytree(crashed["index_dir"], index_dir)
    with Catalog(index_dir, readonly=True) as catalog:
        want = catalog_state(catalog)
    shutil.rmtree(index_dir / "whoosh")
    (index_dir / f"faiss-{TEXT_SPACE}.index").unlink()
    retriever = Retriever(index_dir, hub)
    try:
        with pytest.raises(IndexNeedsRepairError, match="videoqa index --repair"):
            retriever.search("volcano magma", top_k=1)
        assert not (index_dir / "whoosh").exists()  # a search does not rebuild them
        proc = subprocess.run(_index_cmd(crashed["folder"], index_dir, "--json"), env=crashed["env"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and json.loads(proc.stdout)["repaired"], proc.stderr
        assert derived_state(index_dir) == want
        assert crashed["kinds"][retriever.search("volcano magma", top_k=1)[0].name] == "volcano_lecture.mp4"
        assert not retriever.stale
    finally:
        retriever.close()


def test_sqlite_commit_is_all_or_nothing_for_a_killed_writer(tmp_path):
    """The property the pipeline relies on, shown directly: a writer killed inside its transaction
    leaves nothing of it behind (WAL mode, as the catalog uses)."""
    Catalog(tmp_path).close()  # the schema, in WAL mode
    code = """if True:
        import os, signal, sqlite3, sys
        db = sqlite3.connect(sys.argv[1], isolation_level=None)
        db.execute("BEGIN")
        db.execute("INSERT INTO videos(content_id, path, name, indexed_at) VALUES ('x', '/x', 'x', 'now')")
        db.execute("INSERT INTO moments(video_id, kind, start, \\"end\\", text) VALUES (1, 'speech', 0, 1, 'hi')")
        os.kill(os.getpid(), signal.SIGKILL)
    """
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / Catalog.FILENAME)], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    with Catalog(tmp_path, readonly=True) as catalog:
        assert catalog.count_videos() == 0 and catalog.stats()["moments"] == 0
    assert _integrity(tmp_path) == "ok"

