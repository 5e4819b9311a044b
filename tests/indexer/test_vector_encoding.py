"""The vector_encoding setting: quantized FAISS indexes (float16, 8-bit, 4-bit scalars) against float32."""

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.derived import DerivedIndexes
from indexer.manifest import write_manifest
from indexer.vector_index import VectorIndexOptions, VectorStore
from models.errors import ConfigError
from tests.indexer.test_scale_indexes import _clustered, _fill

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "eval"


def _questions(name: str) -> list[str]:
    return [json.loads(line)["question"] for line in (EVAL / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def real_vectors(hub):
    """By-language (the packaged default) vectors of the English evaluation questions as documents, and
    the other sets' questions (other languages, on-screen text, unanswerable) as queries."""
    embedder = hub.text_embedder
    corpus = np.asarray(embedder.embed_documents(_questions("questions.jsonl")), np.float32)
    queries = [q for name in ("questions_multilingual.jsonl", "questions_screen.jsonl",
                              "questions_unanswerable.jsonl") for q in _questions(name)]
    return corpus, np.stack([embedder.embed_query(q) for q in queries]).astype(np.float32)


@pytest.mark.parametrize("encoding, min_recall", [("float16", 0.99), ("8bit", 0.95), ("4bit", 0.9)])
def test_a_quantized_index_finds_what_float32_finds_on_real_vectors(tmp_path, real_vectors, encoding, min_recall):
    corpus, queries = real_vectors
    ids = np.arange(1, len(corpus) + 1) * 3  # catalog ids need not be dense
    by_id = {int(i): v for i, v in zip(ids, corpus)}
    exact = lambda found: {int(i): by_id[int(i)] for i in found}  # noqa: E731 - what Catalog.vectors_of gives
    flat = VectorStore(tmp_path, "text", VectorIndexOptions("flat", encoding="float32"))
    flat.build(ids, corpus)
    quantized = VectorStore(tmp_path, "text", VectorIndexOptions("flat", encoding=encoding))
    quantized.build(ids, corpus)
    assert (flat.encoding, quantized.encoding) == ("float32", encoding)

    recall = []
    for q in queries:
        want, want_cos = flat.search(q, 10)
        got, _ = quantized.search(q, 10)
        recall.append(len(set(want) & set(got)) / 10)
        rescored, cos = quantized.search(q, 10, exact=exact)
        assert rescored[0] == want[0]  # the best match is the same
        assert np.all(np.diff(cos) <= 0)  # best first
        same = {int(i): c for i, c in zip(want, want_cos)}
        for i, c in zip(rescored, cos):  # scored with the float32 vectors: the exact cosines
            if int(i) in same:
                assert abs(same[int(i)] - float(c)) < 1e-5
    assert np.mean(recall) >= min_recall, recall


def test_ivf_with_4bit_scalars_and_rescoring_finds_what_flat_finds(tmp_path):
    n, dim = 4000, 32
    vectors = _clustered(n, dim, 0)
    ids = np.arange(1, n + 1) * 7
    exact = lambda found: {int(i): vectors[int(i) // 7 - 1] for i in found}  # noqa: E731
    flat = VectorStore(tmp_path, "text", VectorIndexOptions("flat"))
    flat.build(ids, vectors)
    ivf = VectorStore(tmp_path, "text", VectorIndexOptions("ivf", nprobe=16))  # auto encoding: 4bit in ivf
    ivf.build(ids, vectors)
    assert (flat.kind, flat.encoding, ivf.kind, ivf.encoding) == ("flat", "float32", "ivf", "4bit")
    recall = []
    for q in _clustered(50, dim, 1):
        want, want_cos = flat.search(q, 10)
        got, cos = ivf.search(q, 200, exact=exact)  # as the retriever asks: 200 candidates, scored exactly
        got, cos = got[:10], cos[:10]
        recall.append(len(set(want) & set(got)) / 10)
        if got[0] == want[0]:
            assert abs(float(cos[0]) - float(want_cos[0])) < 1e-5
    assert np.mean(recall) >= 0.9


def test_an_invalid_encoding_is_a_clear_error():
    with pytest.raises(ConfigError, match="invalid vector encoding '3bit'.*float32, float16, 8bit, 4bit"):
        VectorIndexOptions(encoding="3bit")


def test_a_flat_quantizer_is_trained_again_when_new_vectors_fall_outside_its_ranges(tmp_path):
    vectors = _clustered(300, 16, 4)
    store = VectorStore(tmp_path, "text", VectorIndexOptions("flat", encoding="4bit"))
    store.add(np.arange(1, 101), vectors[:100] * 0.5)  # the first video: its ranges are narrow
    assert store.encoding == "4bit" and not store.needs_rebuild()
    between = (vectors[:100] + vectors[np.r_[50:100, 0:50]]) * 0.25  # midpoints: within every range
    store.add(np.arange(101, 201), between)
    assert not store.needs_rebuild()
    store.add(np.arange(201, 301), vectors[200:])  # twice as large: they would be clipped
    assert store.needs_rebuild()
    store.build(np.arange(1, 301), np.vstack([vectors[:100] * 0.5, between, vectors[200:]]))
    assert not store.needs_rebuild() and store.ntotal == 300


def test_an_old_8bit_ivf_index_is_made_again_in_the_wanted_encoding(tmp_path):
    vectors = _clustered(2000, 16, 5)
    old = VectorStore(tmp_path, "text", VectorIndexOptions("auto", ivf_above=1000, encoding="8bit"))
    old.build(np.arange(1, 2001), vectors)
    old.save()
    now = VectorStore(tmp_path, "text", VectorIndexOptions("auto", ivf_above=1000)).load()
    assert (now.kind, now.encoding) == ("ivf", "8bit") and now.needs_rebuild()


def test_the_setting_from_a_toml_file_makes_an_existing_index_again_losing_nothing(tmp_path):
    """videoqa.toml holding only ``vector_encoding = "8bit"``, as docs/SETTINGS.md shows it: the next
    writer (here ``ensure_index``, what ``videoqa serve`` and ``videoqa index`` do first) makes the
    float32 FAISS file again in 8-bit scalars from the catalog, with every vector and the same answers."""
    from app import VideoQA, load_settings

    index = tmp_path / "index"
    index.mkdir()
    with Catalog(index) as catalog:
        write_manifest(catalog, {"spaces": {"text": {"model": "test", "dim": 8}}})
        derived = DerivedIndexes(catalog)
        derived.rebuild()
        _fill(catalog, derived)
        ids, matrix = catalog.vectors("text")
        keys = derived.keywords.doc_keys()
    before = VectorStore(index, "text").load()
    assert (before.kind, before.encoding, before.ntotal) == ("flat", "float32", len(ids))
    want = [before.search(v, 3)[0].tolist() for v in matrix]

    toml = tmp_path / "videoqa.toml"
    toml.write_text('vector_encoding = "8bit"\n')
    settings = load_settings(config=toml, env={})
    assert settings.vector_encoding == "8bit" and settings.sources["vector_encoding"] == str(toml)
    VideoQA(settings, index_dir=str(index)).ensure_index()

    with Catalog(index) as catalog:
        after = DerivedIndexes(catalog).vector_store("text")
        assert (after.kind, after.encoding, after.ntotal) == ("flat", "8bit", len(ids))
        assert DerivedIndexes(catalog).is_current() and DerivedIndexes(catalog).keywords.doc_keys() == keys
        exact = lambda found: catalog.vectors_of("text", found)  # noqa: E731 - as the retriever scores
        assert [after.search(v, 3, exact=exact)[0].tolist() for v in matrix] == want

    toml.write_text('vector_encoding = "float32"\n')  # and back
    VideoQA(load_settings(config=toml, env={}), index_dir=str(index)).ensure_index()
    again = VectorStore(index, "text").load()
    assert (again.encoding, again.ntotal) == ("float32", len(ids))
    assert [again.search(v, 3)[0].tolist() for v in matrix] == want
