"""A change of text embedder without indexing the videos again: ``videoqa index --reembed``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app import VideoQA, load_settings
from indexer.catalog import Catalog
from indexer.schema import TEXT_SPACE
from models.errors import IndexMismatchError
from tests.conftest import SAMPLE_MEDIA

pytestmark = pytest.mark.slow


@pytest.fixture
def indexed_default(tmp_path, hub):
    """bicycle_repair.mp4 indexed with the packaged default text embedder (by-language)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(SAMPLE_MEDIA / "bicycle_repair.mp4", folder / "bicycle_repair.mp4")
    qa = VideoQA(load_settings({"index_dir": str(tmp_path / "index"), "profile": "packaged"}, env={}), hub=hub)
    assert qa.index([folder]).count("indexed") == 1
    return qa


def _text_vectors(index_dir):
    with Catalog(index_dir, readonly=True) as catalog:
        return catalog.vectors(TEXT_SPACE), catalog.manifest()["spaces"][TEXT_SPACE]


def test_reembed_from_the_command_line_as_the_docs_show_it(indexed_default, tmp_path, monkeypatch, capsys):
    from app.cli import main

    (ids_before, before), spec_before = _text_vectors(indexed_default.index_dir)
    assert spec_before["model"] != "sentence-transformers/all-MiniLM-L6-v2" and before.shape[1] > 384
    work = tmp_path / "work"
    work.mkdir()
    (work / "videoqa.toml").write_text('text_embedder = "sentence-transformers"\n')
    monkeypatch.setenv("VIDEOQA_CONFIG", str(work / "videoqa.toml"))
    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(indexed_default.index_dir))
    monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
    # the new setting alone: a clear error that names the way out
    assert main(["search", "how to patch a tyre"]) != 0
    assert "videoqa index --reembed" in capsys.readouterr().err

    assert main(["index", "--reembed", "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert f"{len(ids_before)} text vectors made again with sentence-transformers/all-MiniLM-L6-v2 (384-d" in said
    (ids_after, after), spec_after = _text_vectors(indexed_default.index_dir)
    assert np.array_equal(ids_before, ids_after) and after.shape == (len(ids_before), 384)
    assert spec_after == {"model": "sentence-transformers/all-MiniLM-L6-v2", "backend": "sentence-transformers",
                          "dim": 384}
    on_disk = json.loads((indexed_default.index_dir / "manifest.json").read_text())
    assert on_disk["spaces"][TEXT_SPACE] == spec_after
    # the moments are searched with the new vectors: the patching sentence is found by meaning alone
    assert main(["search", "how do I repair a hole in the inner tube", "--json", "--set", "keyword_weight=0"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and hits[0]["name"] == "bicycle_repair.mp4" and hits[0]["channels"]["semantic"] > 0
    # a second run has nothing to do
    assert main(["index", "--reembed", "--no-progress"]) == 0
    assert "already sentence-transformers/all-MiniLM-L6-v2's" in capsys.readouterr().out


def test_a_reembed_that_fails_leaves_the_index_as_it_was(indexed_default, monkeypatch):
    (ids, before), spec = _text_vectors(indexed_default.index_dir)
    other = VideoQA(indexed_default.settings, text_embedder="sentence-transformers")
    embedder = other.hub.text_embedder
    calls = []

    def fail_on_second_batch(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("killed half way")
        return type(embedder).embed_documents(embedder, texts)

    monkeypatch.setattr(embedder, "embed_documents", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="half way"):
        from indexer.reembed import reembed_text

        reembed_text(other.index_dir, other.hub, other.index_options(), batch_size=1)
    (ids_after, after), spec_after = _text_vectors(indexed_default.index_dir)
    assert np.array_equal(ids, ids_after) and np.array_equal(before, after) and spec_after == spec
    hits = indexed_default.search("patch the tube")  # the old settings still search it
    assert hits and hits[0].name == "bicycle_repair.mp4"
    with pytest.raises(IndexMismatchError):
        other.search("patch the tube")
