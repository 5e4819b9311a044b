from pathlib import Path

import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.schema import Keyframe, Moment
from indexer.derived import DerivedIndexes
from indexer.manifest import write_manifest


def _add(catalog, name, texts, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    moments = [Moment(i * 10.0, i * 10.0 + 5, "speech", t) for i, t in enumerate(texts)]
    vecs = rng.normal(size=(len(texts), dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    added = catalog.add_video(content_id=f"cid-{name}-{seed}", path=f"/videos/{name}", stat=None,
                              info={"duration": 60.0, "has_audio": True}, keyframes=[Keyframe(0.0, 0.0, b"jpg", 1, 1)],
                              moments=moments, vectors={"text": ("moment", vecs)}, run_id=None)
    for m, mid in zip(moments, added.moment_ids):
        m.id, m.video_id = mid, added.video_id
    return added, moments, vecs


def test_video_commit_is_atomic_and_bumps_generation(tmp_path):
    with Catalog(tmp_path) as catalog:
        g0 = catalog.generation
        with pytest.raises(ValueError, match="2 vectors for 1 moments"):
            catalog.add_video(content_id="x", path="/videos/x.mp4", stat=None, info={}, keyframes=[],
                              moments=[Moment(0, 1, "speech", "hello")],
                              vectors={"text": ("moment", np.zeros((2, 4), np.float32))},  # wrong count
                              run_id=None)
        assert catalog.count_videos() == 0 and catalog.stats()["moments"] == 0
        assert catalog.generation == g0
        _add(catalog, "a.mp4", ["hello world"])
        assert catalog.generation == g0 + 1


def test_replacing_a_path_removes_the_old_content(tmp_path):
    with Catalog(tmp_path) as catalog:
        first, _, _ = _add(catalog, "a.mp4", ["old words"], seed=1)
        second, _, _ = _add(catalog, "a.mp4", ["new words", "more"], seed=2)
        assert second.replaced_videos == [first.video_id]
        assert second.replaced_vectors == {"text": first.moment_ids}
        assert second.video_id > first.video_id  # ids are never reused: stale index entries cannot alias
        assert catalog.count_videos() == 1
        assert [m.text for m in catalog.moments_of(second.video_id)] == ["new words", "more"]


def test_derived_indexes_rebuild_to_the_same_state(tmp_path):
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 4}}})
        derived = DerivedIndexes(catalog)
        derived.mark_current()
        for i, name in enumerate(["a.mp4", "b.mp4", "a.mp4"]):  # the third replaces the first
            added, moments, vecs = _add(catalog, name, [f"text {name} {i}", "shared words"], seed=i)
            video = catalog.videos([added.video_id])[0]
            derived.apply(video, moments, {"text": (added.moment_ids, vecs)}, added.replaced_videos,
                          added.replaced_vectors)
        assert derived.is_current()
        incremental = derived.vector_store("text").ntotal
        docs_incremental = derived.keywords.doc_keys()
        catalog.set_meta("generation", str(catalog.generation + 5))  # as after a crash
        assert not DerivedIndexes(catalog).is_current()
        fresh = DerivedIndexes(catalog)
        fresh.rebuild()
        assert fresh.is_current()
        assert fresh.vector_store("text").ntotal == incremental == 4
        assert fresh.keywords.doc_keys() == docs_incremental
        assert len(docs_incremental) == 2 + 4  # two video documents, four moments


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_buffered_updates_reach_disk_at_flush_and_equal_a_rebuild(tmp_path, engine):
    """apply(flush=False) keeps the change in memory: derived.json stays behind (a crash means a
    rebuild, never stale files that claim to be current); flush writes it all at once."""
    from indexer.keyword_index import KeywordOptions

    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 4}}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
        derived.mark_current()
        for i, name in enumerate(["a.mp4", "b.mp4", "a.mp4", "c.mp4"]):  # the third replaces the first
            added, moments, vecs = _add(catalog, name, [f"text {name} {i}", "shared words"], seed=i)
            derived.apply(catalog.videos([added.video_id])[0], moments, {"text": (added.moment_ids, vecs)},
                          added.replaced_videos, added.replaced_vectors, flush=False)
            assert derived.pending and not derived.is_current()
        assert not DerivedIndexes(catalog).is_current()  # what another process sees before the flush
        derived.flush()
        assert not derived.pending and derived.is_current() and DerivedIndexes(catalog).usable()
        buffered = (DerivedIndexes(catalog).vector_store("text").ntotal, derived.keywords.doc_keys())
        fresh = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
        fresh.rebuild()
        assert (fresh.vector_store("text").ntotal, fresh.keywords.doc_keys()) == buffered
        assert buffered[0] == 6 and len(buffered[1]) == 3 + 6  # the replaced video's documents are gone


def test_maybe_flush_spends_a_share_of_the_time(tmp_path, monkeypatch):
    import indexer.derived as derived_module

    now = [100.0]
    monkeypatch.setattr(derived_module.time, "monotonic", lambda: now[0])
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 4}}})
        derived = DerivedIndexes(catalog)
        derived.mark_current()

        def add(i):
            added, moments, vecs = _add(catalog, f"v{i}.mp4", [f"words {i}"], seed=i)
            derived.apply(catalog.videos([added.video_id])[0], moments, {"text": (added.moment_ids, vecs)},
                          flush=False)

        add(0)
        assert derived.maybe_flush(share=0.1)  # nothing written yet: at once
        derived._last_flush = (now[0], 2.0)  # as if that flush had taken 2 s
        add(1)
        now[0] += 19.0
        assert not derived.maybe_flush(share=0.1) and derived.pending  # 19 s < 2 s / 0.1
        now[0] += 1.0
        assert derived.maybe_flush(share=0.1) and not derived.pending and derived.is_current()
        assert not derived.maybe_flush(share=0.1)  # nothing pending


def test_a_relative_index_dir_opens_read_only(tmp_path, monkeypatch):
    with Catalog(tmp_path / "idx") as catalog:
        _add(catalog, "a.mp4", ["hello"])
    monkeypatch.chdir(tmp_path)
    with Catalog(Path("idx"), readonly=True) as catalog:  # read-only opens by URI, which needs an absolute path
        assert catalog.count_videos() == 1
