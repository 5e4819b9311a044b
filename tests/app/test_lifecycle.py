"""An index over time: moves, changes, concurrent readers, locks, crashes, mismatched models."""

import json
import shutil

import pytest

from app import VideoQA, load_settings
from indexer.locks import writer_lock
from models.errors import IndexLockedError, IndexMismatchError
from retriever import IndexNeedsRepairError
from tests.conftest import SAMPLE_MEDIA

pytestmark = pytest.mark.slow


@pytest.fixture
def make_qa(tmp_path, hub):
    def make(**overrides):
        settings = load_settings({"index_dir": str(tmp_path / "index"), "profile": "packaged"}, env={})
        return VideoQA(settings, hub=hub, **overrides)
    return make


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    shutil.copy(SAMPLE_MEDIA / "bicycle_repair.mp4", d / "bicycle_repair.mp4")
    return d


def test_a_moved_file_is_not_indexed_again_and_is_found_by_its_new_name(make_qa, folder):
    qa = make_qa()
    assert qa.index([folder]).count("indexed") == 1
    (folder / "bicycle_repair.mp4").rename(folder / "puncture_howto.mp4")
    report = qa.index([folder])
    assert report.count("skipped") == 1 and report.results[0].reason.startswith("moved from")
    hits = qa.search("puncture howto")
    assert hits and hits[0].name == "puncture_howto.mp4" and hits[0].channels["keyword"] > 0.5  # both words
    assert [v["name"] for v in qa.library()["videos"]] == ["puncture_howto.mp4"]


def test_a_changed_file_replaces_its_old_content(make_qa, folder):
    qa = make_qa()
    qa.index([folder])
    assert qa.search("flat tire")[0].name == "bicycle_repair.mp4"
    shutil.copy(SAMPLE_MEDIA / "volcano_lecture.mp4", folder / "bicycle_repair.mp4")  # same path, new bytes
    assert qa.index([folder]).count("indexed") == 1
    assert qa.library()["stats"]["videos"] == 1
    assert qa.search("flat tire") == [] or "tire" not in qa.search("flat tire")[0].moments[0].text.lower()
    assert "lava" in qa.search("lava eruption")[0].moments[0].text.lower()


def test_a_running_searcher_sees_new_videos(make_qa, folder, tmp_path):
    reader, writer = make_qa(), make_qa()
    writer.index([folder])
    assert reader.search("lava eruption") == []
    other = tmp_path / "more"
    other.mkdir()
    shutil.copy(SAMPLE_MEDIA / "volcano_lecture.mp4", other / "volcano_lecture.mp4")
    writer.index([other])
    assert reader.search("lava eruption")[0].name == "volcano_lecture.mp4"


def test_one_writer_at_a_time(make_qa, folder, capsys, monkeypatch, tmp_path):
    qa = make_qa()
    with writer_lock(qa.index_dir):
        with pytest.raises(IndexLockedError, match="being written by videoqa index"):
            qa.index([folder])
        from app.cli import main

        monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(qa.index_dir))
        monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
        assert main(["index", str(folder)]) == IndexLockedError.exit_code
        assert "wait for it to finish" in capsys.readouterr().err


def test_derived_indexes_behind_the_catalog_are_rebuilt_by_the_next_index_run(make_qa, folder):
    qa = make_qa()
    qa.index([folder])
    state = qa.index_dir / "derived.json"
    data = json.loads(state.read_text())
    data["generation"] -= 1  # as if the process died between the catalog commit and the index update
    state.write_text(json.dumps(data))
    (qa.index_dir / "faiss-text.index").unlink()
    shutil.rmtree(qa.index_dir / "whoosh")
    fresh = make_qa()
    with pytest.raises(IndexNeedsRepairError, match="videoqa index --repair"):
        fresh.search("flat tire")  # a search does not rebuild them: only the writer does
    assert not (qa.index_dir / "whoosh").exists() and json.loads(state.read_text()) == data
    report = fresh.index([folder])  # the next `videoqa index`, with nothing new to index
    assert report.repaired and report.count("skipped") == 1
    hits = fresh.search("flat tire")
    assert hits and hits[0].channels["keyword"] > 0.5 and hits[0].channels["semantic"] > 0
    assert not fresh.retriever.stale
    assert json.loads(state.read_text())["generation"] == data["generation"] + 1
    assert (qa.index_dir / "faiss-text.index").exists()


def test_repair_from_the_command_line(make_qa, folder, capsys, monkeypatch):
    from app.cli import main

    qa = make_qa()
    qa.index([folder])
    shutil.rmtree(qa.index_dir / "whoosh")
    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(qa.index_dir))
    monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
    assert main(["index", "--repair"]) == 0
    assert "1 videos" in capsys.readouterr().out
    assert (qa.index_dir / "whoosh").exists()


def test_other_text_vectors_are_a_clear_error(make_qa, folder):
    make_qa().index([folder])  # the packaged default: MiniLM for English pairs, USE for the rest
    other = make_qa(text_embedder="sentence-transformers")  # MiniLM alone: English vectors, but not these
    other._hub = None  # build its own models from these settings
    with pytest.raises(IndexMismatchError, match=r"made with sentence-transformers\|use-numpy"):
        other.search("flat tire")
    with pytest.raises(IndexMismatchError):
        other.index([folder])


def test_video_without_audio(make_qa, shared_media, tmp_path):
    d = tmp_path / "silent"
    d.mkdir()
    (d / "carphone.mp4").symlink_to(shared_media / "video" / "talkinghead_carphone_noaudio.mp4")
    qa = make_qa()
    result = qa.index([d]).results[0]
    assert (result.status, result.moments, result.language) == ("indexed", 0, None)
    assert result.keyframes >= 1
    hits = qa.search("carphone")  # found by its name
    assert hits[0].name == "carphone.mp4" and hits[0].moments == [] and hits[0].keyframes


def test_reciprocal_rank_fusion_and_top_k(make_qa, folder, capsys, monkeypatch):
    shutil.copy(SAMPLE_MEDIA / "volcano_lecture.mp4", folder / "volcano_lecture.mp4")
    make_qa().index([folder])
    hits = make_qa(fusion="rrf").search("lava eruption ash")
    assert hits[0].name == "volcano_lecture.mp4"
    from retriever import DEFAULT_WEIGHTS

    # first in both channels, each weighted
    assert hits[0].score == pytest.approx((DEFAULT_WEIGHTS["keyword"] + DEFAULT_WEIGHTS["semantic"]) / 61)
    from app.cli import main

    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(make_qa().index_dir))
    monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
    assert main(["search", "bicycle wheel and lava", "--top-k", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 1


def test_auto_profile_says_which(tmp_path):
    qa = VideoQA(load_settings({"index_dir": str(tmp_path), "profile": "auto"}, env={}))
    info = qa.models()
    assert info["profile"] == "packaged" and info["requested"] == "auto"
    assert info["why"].startswith("auto: full-profile models missing")


def test_remove_takes_a_video_out_of_every_index(make_qa, folder):
    shutil.copy(SAMPLE_MEDIA / "volcano_lecture.mp4", folder / "volcano_lecture.mp4")
    qa = make_qa()
    qa.index([folder])
    volcano = next(v for v in qa.library()["videos"] if v["name"] == "volcano_lecture.mp4")
    assert qa.search("lava eruption")[0].name == "volcano_lecture.mp4"
    qa.remove(volcano["id"])
    assert [v["name"] for v in qa.library()["videos"]] == ["bicycle_repair.mp4"]
    assert all(h.name != "volcano_lecture.mp4" for h in qa.search("lava eruption"))
    assert (folder / "volcano_lecture.mp4").exists()  # the file itself is left alone
    from indexer.catalog import Catalog
    from indexer.derived import DerivedIndexes

    with Catalog(qa.index_dir) as catalog:
        derived = DerivedIndexes(catalog)
        assert derived.is_current() and derived.vector_store("text").ntotal == catalog.count_vectors("text")
    report = qa.index([folder])  # indexing the folder again brings it back
    assert report.count("indexed") == 1 and report.count("skipped") == 1
