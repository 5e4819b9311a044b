"""The combined text embedder (MiniLM + multilingual USE) with the real packaged weights."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.hub import ModelHub, ModelsConfig, RoleConfig
from tests.conftest import SAMPLE_MEDIA, make_speech_video

PASSAGES = ["The volcano erupted and lava flowed down the mountain.",
            "广州市房地产中介协会分析",
            "Knead the dough for ten minutes, then let it rise.",
            "跑步给我带来了身体健康"]


def _hub(**options) -> ModelHub:
    return ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(backend="combined",
                                                                                          options=options)}))


@pytest.fixture(scope="module")
def combined():
    return _hub(batch_size=8).require("text_embedder")


@pytest.mark.parametrize("backend, model, dim", [("combined", "sentence-transformers+use-numpy", 384 + 512),
                                                 ("by-language", "sentence-transformers|use-numpy", 384 + 2 * 512)])
def test_parts_are_the_packaged_backends_built_as_the_hub_builds_them(backend, model, dim):
    """Both pairs (models.combined_embedder.TextEmbedderPair) build their parts the same way."""
    pair = ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(
        backend=backend, options={"batch_size": 8})})).require("text_embedder")
    assert pair.model_name == model and not pair.loaded
    minilm, use = pair.parts
    assert minilm.backend_name == "sentence-transformers"
    assert minilm.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert use.backend_name == "use-numpy" and minilm.batch_size == 8  # the hub's options reach the parts
    assert "packaged wheel" in pair.locate().source
    assert pair.dim == dim


def test_inner_product_is_the_weighted_sum_of_cosines(combined):
    docs = combined.embed_documents(PASSAGES)
    assert docs.shape == (4, combined.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    minilm, use = combined.parts
    query = "what happens when a volcano erupts"
    cos_m = minilm.embed_documents(PASSAGES) @ minilm.embed_query(query)
    cos_u = use.embed_documents(PASSAGES) @ use.embed_query(query)
    try:
        for weight in (0.0, 0.3, 0.5, 1.0):
            combined.weight = weight  # documents do not depend on it
            np.testing.assert_allclose(docs @ combined.embed_query(query), weight * cos_m + (1 - weight) * cos_u,
                                       atol=1e-5)
    finally:
        combined.weight = 0.5


def test_english_questions_find_chinese_passages(combined):
    docs = combined.embed_documents(PASSAGES)
    for question, want in {"Guangzhou real estate agency association": 1, "running is good for my health": 3,
                           "火山喷发了吗？": 0, "how do I bake bread": 2}.items():
        assert int(np.argmax(docs @ combined.embed_query(question))) == want, question


def test_bad_weight_model_or_path_is_a_clear_error():
    with pytest.raises(ConfigError, match="between 0 and 1"):
        _hub(weight=1.5).require("text_embedder")
    with pytest.raises(ConfigError, match="two text embedder backends"):
        ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(
            backend="combined", model="sentence-transformers")})).require("text_embedder")
    with pytest.raises(ConfigError, match="text_embedder_path"):
        ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(
            backend="combined", path="/tmp")})).require("text_embedder")


@pytest.mark.slow
def test_an_english_question_finds_the_moment_of_chinese_speech(shared_media, tmp_path):
    """Indexed with the packaged Whisper base: an English question, nothing in common with the
    Chinese transcript but its meaning, finds the video and the moment where it is said."""
    from indexer.writer import Indexer
    from retriever.api import Retriever

    hub = ModelHub(ModelsConfig(profile="packaged", roles={"transcriber": RoleConfig(model="base"),
                                                           "text_embedder": RoleConfig(backend="combined")}))
    folder = tmp_path / "videos"
    folder.mkdir()
    footage = shared_media / "video" / "talkinghead_carphone_noaudio.mp4"
    offset = 2.0
    # (recording, its length in seconds): AISHELL and PaddleSpeech clips, 4.3 and 5.0 s
    for name, audio, length in (("a.mp4", "zh_aishell_BAC009S0724W0121.wav", 4.3),
                                ("b.mp4", "zh_paddlespeech_paobu.wav", 5.0)):
        make_speech_video(footage, shared_media / "audio" / audio, folder / name, offset, length + offset + 2.0)
    for sample in ("volcano_lecture.mp4", "bread_baking.mp4"):  # English speech: distractors
        (folder / sample).symlink_to(SAMPLE_MEDIA / sample)
    index_dir = tmp_path / "index"
    report = Indexer(index_dir, hub).index([folder])
    assert report.ok, [r.to_dict() for r in report.failed]
    retriever = Retriever(index_dir, hub)
    for question, video, length in (("Guangzhou real estate agency association", "a.mp4", 4.3),
                                    ("running is good for my health", "b.mp4", 5.0)):
        hits = retriever.search(question, top_k=1)
        assert hits and hits[0].name == video, (question, [(h.name, h.score) for h in hits])
        assert hits[0].channels.get("semantic", 0) > 0  # found by meaning: no word in common
        best = hits[0].moments[0]
        centre = (best.start + best.end) / 2
        assert offset - 0.5 <= centre <= offset + length + 0.5, (best.start, best.end)
