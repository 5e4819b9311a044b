"""The full profile end to end on tiny random-weight models: index, search with three channels, ask + rerank."""

import json
import shutil

import pytest

from tests.conftest import SAMPLE_MEDIA

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_env(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("full-library")
    for name in ("volcano_lecture.mp4", "solar_system.mp4"):
        shutil.copy(SAMPLE_MEDIA / name, folder / name)
    index = tmp_path_factory.mktemp("full-index")
    return {"VIDEOQA_CONFIG": str(tiny_models), "VIDEOQA_INDEX_DIR": str(index)}, folder


@pytest.fixture(scope="module")
def full_indexed(full_env):
    from app.cli import main

    env, folder = full_env
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        assert main(["index", str(folder), "--json"]) == 0
    finally:
        mp.undo()
    return env


def _run(env, monkeypatch, capsys, *args):
    from app.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(list(args))
    return code, capsys.readouterr()


def test_models_in_the_full_profile_are_all_found(full_env, monkeypatch, capsys):
    code, out = _run(full_env[0], monkeypatch, capsys, "models", "--json")
    info = json.loads(out.out)
    assert code == 0 and info["profile"] == "full"
    full = {r["role"]: r for r in info["roles"] if r["profile"] == "full"}
    assert all(r["found"] for r in full.values()), full
    assert full["describer"]["source"] == "local path"


def test_index_has_keyframe_vectors_and_descriptions(full_indexed):
    from indexer.catalog import Catalog

    with Catalog(full_indexed["VIDEOQA_INDEX_DIR"]) as catalog:
        manifest = catalog.manifest()
        assert set(manifest["spaces"]) == {"text", "image"}
        assert manifest["spaces"]["image"]["dim"] == 32 and manifest["spaces"]["text"]["dim"] == 64
        stats = catalog.stats()
        assert catalog.count_vectors("image") == stats["keyframes"] > 0
        assert catalog.count_vectors("text") == stats["moments"]


def test_search_fuses_three_channels(full_indexed, monkeypatch, capsys):
    code, out = _run(full_indexed, monkeypatch, capsys, "search", "red lava flows down the volcano", "--json")
    hits = json.loads(out.out)["hits"]
    assert code == 0 and hits[0]["video"].endswith("volcano_lecture.mp4")  # the keyword channel decides
    assert set(hits[0]["channels"]) == {"keyword", "semantic", "visual"}


def test_ask_reranks_one_candidate_per_video(full_indexed, monkeypatch, capsys):
    code, out = _run(full_indexed, monkeypatch, capsys, "ask", "what flows down the volcano", "--json")
    data = json.loads(out.out)
    # Random weights rarely cite a label of their context: such a candidate falls back to extractive.
    assert code == 0 and data["method"] in ("generative+rerank", "extractive-fallback+rerank")
    assert data["found"] is True
    candidates = data["candidates"]
    assert len(candidates) == len({c["video"] for c in candidates}) >= 1
    assert all(0.0 <= c["score"] <= 1.0 for c in candidates)
    best = max(candidates, key=lambda c: c["score"])
    assert data["answer"] == best["answer"]
    assert data["citations"] == best["citations"] and data["citations"]


def test_streaming_answer_events(full_indexed):
    from app import VideoQA, load_settings

    # Random-weight vectors rank videos and moments at random: the keyword channel, weighted fully
    # here for both, puts the video that says "rings" first with that line among its moments, so a
    # candidate has transcript lines and gets scored.
    qa = VideoQA(load_settings(env={**full_indexed, "VIDEOQA_KEYWORD_WEIGHT": "1.0",
                                    "VIDEOQA_MOMENT_KEYWORD_WEIGHT": "1.0"}))
    events = list(qa.ask_stream("which planet has rings"))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "final" and "candidate" in kinds and "token" in kinds and "scored" in kinds
    answer = events[-1].answer
    for video in {c.video for c in answer.candidates}:
        streamed = "".join(e.text for e in events if e.kind == "token" and e.video == video).strip()
        candidate = next(c for c in answer.candidates if c.video == video)
        assert streamed == candidate.generated  # what was written, whether it was kept or fell back


def test_full_profile_without_weights_says_what_is_missing(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, out = _run({"VIDEOQA_PROFILE": "full", "VIDEOQA_INDEX_DIR": str(tmp_path)}, monkeypatch, capsys,
                     "models", "--json")
    info = json.loads(out.out)
    missing = {r["role"]: r["reason"] for r in info["roles"] if r["profile"] == "full" and not r["found"]}
    assert set(missing) == {"transcriber", "frame_embedder", "describer", "answerer", "text_embedder", "reranker"}
    for role, reason in missing.items():
        assert reason.startswith(f"{role}:") and "looked in" in reason and "To get it" in reason, reason
    assert "huggingface-cli download Qwen/Qwen2.5-VL-3B-Instruct" in missing["describer"]


def test_one_decode_pass_feeds_keyframes_text_and_the_describer(tiny_models, monkeypatch):
    """Keyframes, on-screen text and the vision-language model's frames come from one PyAV decode."""
    import models.qwen_vl as qwen_vl
    from app import VideoQA, load_settings
    from indexer.decode import decode_passes
    from indexer.pipeline import Job, extract

    def decode_again(*args, **kwargs):
        raise AssertionError("the describer decoded the video itself")

    monkeypatch.setattr(qwen_vl, "sample_frames", decode_again)
    qa = VideoQA(load_settings(env={"VIDEOQA_CONFIG": str(tiny_models)}))
    assert qa.profile == "full"
    describer = qa.hub.required.describer
    shown = []
    describe = describer.describe

    def describe_and_count(video, start=None, end=None, frames=None):  # the real describer, frames counted
        shown.append(len(frames or []))
        return describe(video, start, end, frames=frames)

    monkeypatch.setattr(describer, "describe", describe_and_count)
    video = SAMPLE_MEDIA / "volcano_lecture.mp4"
    st = video.stat()
    before = decode_passes(video)
    out = extract(Job(str(video), "volcano", st.st_size, st.st_mtime_ns), qa.hub, qa.index_options())
    assert out.failure is None, out.failure
    assert decode_passes(video) == before + 1
    # The describer's rate over the 21.6-s video, or its frame limit, all from the pass.
    assert shown and min(describer.fps * 21, describer.max_frames) - 2 <= shown[0] <= describer.max_frames + 1
    assert "screen" in {m.kind for m in out.moments} and out.keyframes
