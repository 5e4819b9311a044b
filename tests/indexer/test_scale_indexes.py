"""The engines for large indexes: Tantivy for keywords and IVF FAISS for vectors, behind the same interfaces."""

import json

import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.schema import Moment
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions, TantivyKeywordStore, WhooshKeywordStore
from indexer.manifest import write_manifest
from indexer.vector_index import VectorIndexOptions, VectorStore
from models.errors import ConfigError
from retriever.keyword import KeywordSearcher

TEXTS = {
    "volcano.mp4": ["the volcano erupted and lava flowed down the mountain", "ash clouds covered the village"],
    "bread.mp4": ["knead the dough for ten minutes", "bake the bread until the crust is golden"],
    "bikes.mp4": ["fix the flat tyre with a patch", "the chain needs oil after rain"],
}


def _fill(catalog, derived, names=TEXTS, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    for name in names:
        moments = [Moment(i * 10.0, i * 10.0 + 8, "speech", t) for i, t in enumerate(TEXTS[name])]
        vecs = rng.normal(size=(len(moments), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        added = catalog.add_video(content_id=f"cid-{name}", path=f"/videos/{name}", stat=None,
                                  info={"duration": 30.0, "has_audio": True}, keyframes=[], moments=moments,
                                  vectors={"text": ("moment", vecs)}, run_id=None)
        for m, mid in zip(moments, added.moment_ids):
            m.id, m.video_id = mid, added.video_id
        video = catalog.videos([added.video_id])[0]
        derived.apply(video, moments, {"text": (added.moment_ids, vecs)}, added.replaced_videos,
                      added.replaced_vectors)


def _catalog_keys(catalog):
    keys = {f"v{v.id}" for v in catalog.videos()}
    for v in catalog.videos():
        keys |= {f"m{m.id}" for m in catalog.moments_of(v.id)}
    return keys


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_both_keyword_engines_find_the_same_moments(tmp_path, engine):
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 8}}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
        derived.rebuild()
        _fill(catalog, derived)
        assert derived.keywords.engine == engine and derived.is_current()
        assert derived.keywords.doc_keys() == _catalog_keys(catalog)

        videos, moments = KeywordSearcher(derived.keywords).search("How is the bread baked?")
        top_moment = max(moments, key=lambda m: moments[m][1])
        assert catalog.moments([top_moment])[top_moment].text.startswith("bake the bread")
        assert max(videos, key=videos.get) == catalog.video_by_path("/videos/bread.mp4").id
        assert 0.5 < max(s for _, s in moments.values()) <= 1.0  # against what the question could score
        assert KeywordSearcher(derived.keywords).search("the of and") == ({}, {})  # stop words only

        bread = catalog.video_by_path("/videos/bread.mp4").id
        owned = catalog.remove_video(bread)
        derived.remove(bread, owned)
        assert derived.keywords.doc_keys() == _catalog_keys(catalog)
        assert KeywordSearcher(derived.keywords).search("bread dough") == ({}, {})

        # a fresh reader of the directory opens the engine that wrote it
        again = DerivedIndexes(catalog)
        assert again.is_current() and again.keywords.engine == engine


def test_auto_moves_keywords_to_tantivy_past_the_limit(tmp_path):
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 8}}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions("auto", tantivy_above=4))
        derived.rebuild()
        _fill(catalog, derived, ["volcano.mp4", "bread.mp4"])  # 4 moments: at the limit
        assert derived.keywords.engine == "whoosh"
        _fill(catalog, derived, ["bikes.mp4"])  # 6 moments: past it
        assert derived.keywords.engine == "tantivy" and derived.is_current()
        assert not WhooshKeywordStore(tmp_path).dir.exists() and TantivyKeywordStore(tmp_path).exists()
        assert json.loads((tmp_path / "derived.json").read_text())["keywords"] == "tantivy"
        assert derived.keywords.doc_keys() == _catalog_keys(catalog)
        _, moments = KeywordSearcher(derived.keywords).search("lava")
        assert [catalog.moments([m])[m].text for m in moments] == [TEXTS["volcano.mp4"][0]]


def test_invalid_options_are_clear_errors():
    with pytest.raises(ConfigError, match="keyword engine 'lucene'"):
        KeywordOptions("lucene")
    with pytest.raises(ConfigError, match="vector index 'hnsw'"):
        VectorIndexOptions("hnsw")
    with pytest.raises(ConfigError, match="vector_nprobe"):
        VectorIndexOptions(nprobe=0)


def _clustered(n, dim, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim)).astype(np.float32)
    v = centres[rng.integers(0, 50, size=n)] + rng.normal(scale=0.5, size=(n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_above_the_limit_finds_what_flat_finds(tmp_path):
    n, dim = 4000, 32
    vectors = _clustered(n, dim, 0)
    ids = np.arange(1, n + 1) * 7  # catalog ids need not be dense
    flat = VectorStore(tmp_path, "text", VectorIndexOptions("auto", ivf_above=10_000))
    flat.build(ids, vectors)
    ivf = VectorStore(tmp_path, "text", VectorIndexOptions("auto", ivf_above=1_000, nprobe=16, encoding="8bit"))
    ivf.build(ids, vectors)
    assert (flat.kind, ivf.kind) == ("flat", "ivf")

    queries = _clustered(50, dim, 1)
    recall = []
    for q in queries:
        exact, _ = flat.search(q, 10)
        approx, cos = ivf.search(q, 10)
        recall.append(len(set(exact) & set(approx)) / 10)
        assert np.all(np.diff(cos) <= 1e-6)  # best first
    assert np.mean(recall) >= 0.9
    # 8-bit vectors: cosines close to the exact ones
    exact_ids, exact_cos = flat.search(queries[0], 1)
    approx_ids, approx_cos = ivf.search(queries[0], 1)
    assert abs(float(exact_cos[0]) - float(approx_cos[0])) < 0.02

    ivf.remove(ids[:100].tolist())
    assert ivf.ntotal == n - 100
    found, _ = ivf.search(vectors[0], 5)
    assert ids[0] not in found
    ivf.save()
    loaded = VectorStore(tmp_path, "text", VectorIndexOptions(nprobe=16)).load()
    assert loaded.kind == "ivf" and loaded.ntotal == n - 100


def test_vector_store_knows_when_to_change_kind(tmp_path):
    vectors = _clustered(3000, 16, 2)
    ids = np.arange(1, 3001)
    store = VectorStore(tmp_path, "text", VectorIndexOptions("auto", ivf_above=2000))
    store.build(ids[:1500], vectors[:1500])
    assert store.kind == "flat" and not store.needs_rebuild()
    store.add(ids[1500:], vectors[1500:])
    assert store.needs_rebuild()  # past the limit
    store.build(ids, vectors)
    assert store.kind == "ivf" and not store.needs_rebuild()
    store.add(10_000 + np.arange(12_000), _clustered(12_000, 16, 3))
    assert store.needs_rebuild()  # 5x the vectors its lists were made for
    small = VectorStore(tmp_path, "text", VectorIndexOptions("ivf"))
    small.build(ids[:50], vectors[:50])
    assert small.kind == "flat"  # too few vectors to cluster, whatever the setting


def test_a_damaged_derived_file_is_rebuilt_not_a_crash(tmp_path):
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 8}}})
        derived = DerivedIndexes(catalog)
        derived.rebuild()
        _fill(catalog, derived)
        keys = derived.keywords.doc_keys()
        (tmp_path / "faiss-text.index").write_bytes(b"written over by something else")
        (tmp_path / ".faiss-text.index.tmp123").write_bytes(b"left by a killed writer")
        fresh = DerivedIndexes(catalog)
        assert fresh.is_current() and not fresh.loads() and not fresh.usable()
        fresh.rebuild()
        assert fresh.usable() and fresh.vector_store("text").ntotal == 6
        assert fresh.keywords.doc_keys() == keys
        assert not list(tmp_path.glob(".faiss-*"))


def test_whoosh_files_are_read_without_unpickling_code(tmp_path, monkeypatch):
    import os
    import pickle

    import whoosh.index

    from indexer.keyword_index import _safe_loads

    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 8}}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions("whoosh"))
        derived.rebuild()
        _fill(catalog, derived)

        def refuse(_data):
            raise AssertionError("the pickled schema was read")

        monkeypatch.setattr(whoosh.index.pickle, "loads", refuse)
        fresh = DerivedIndexes(catalog)
        _, moments = KeywordSearcher(fresh.keywords).search("knead the dough")
        assert moments  # opened with our own schema, its pickles read through the allow-list

    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        _safe_loads(pickle.dumps(os.system))
    assert _safe_loads(pickle.dumps({"a": (1, 2.0, b"x", frozenset({3}))})) == {"a": (1, 2.0, b"x", frozenset({3}))}
