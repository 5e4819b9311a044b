"""The language-aware text embedder (MiniLM between English texts, USE otherwise), real packaged weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import ConfigError
from models.hub import ModelHub, ModelsConfig, RoleConfig
from tests.conftest import ROOT

EVAL = ROOT / "benchmarks" / "eval"
PASSAGES = ["The volcano erupted and lava flowed down the mountain.",  # English
            "广州市房地产中介协会分析",
            "Knead the dough for ten minutes, then let it rise.",  # English
            "跑步给我带来了身体健康",
            "Bonjour, est-ce que vous allez bien ?"]
ENGLISH = [True, False, True, False, False]


def _hub(**role) -> ModelHub:
    return ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(backend="by-language",
                                                                                          **role)}))


@pytest.fixture(scope="module")
def embedder():
    return _hub(options={"batch_size": 8}).require("text_embedder")


def _questions(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_english_is_told_apart_on_the_evaluation_questions(embedder):
    """Every question of the English set is English; every question of the multilingual and screen
    sets written in another language is not (the rule the backend was chosen by)."""
    english = [q["question"] for q in _questions("questions.jsonl")]
    others = [q["question"] for name in ("questions_multilingual.jsonl", "questions_screen.jsonl")
              for q in _questions(name) if q["category"] in ("zh", "fr", "de", "screen-zh") or q["id"] == "x-en-zh"]
    assert len(english) >= 80 and len(others) >= 14
    assert [q for q in english if not embedder.is_english(q)] == []
    assert [q for q in others if embedder.is_english(q)] == []
    assert embedder.is_english("") and embedder.is_english("   ")  # no text: the English side


def test_inner_product_is_minilm_between_english_texts_and_use_otherwise(embedder):
    docs = embedder.embed_documents(PASSAGES)
    assert docs.shape == (len(PASSAGES), embedder.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert [embedder.is_english(p) for p in PASSAGES] == ENGLISH
    minilm, use = embedder.parts
    for query, query_english in (("what happens when a volcano erupts", True), ("火山喷发了吗？", False)):
        assert embedder.is_english(query) == query_english
        cos_m = minilm.embed_documents(PASSAGES) @ minilm.embed_query(query)
        cos_u = use.embed_documents(PASSAGES) @ use.embed_query(query)
        want = np.where(np.array(ENGLISH) & query_english, cos_m, cos_u)
        np.testing.assert_allclose(docs @ embedder.embed_query(query), want, atol=1e-5)


def test_questions_find_passages_across_languages(embedder):
    docs = embedder.embed_documents(PASSAGES)
    for question, want in {"Guangzhou real estate agency association": 1, "running is good for my health": 3,
                           "火山喷发了吗？": 0, "how do I bake bread": 2, "hello, how are you doing?": 4}.items():
        assert int(np.argmax(docs @ embedder.embed_query(question))) == want, question


def test_bad_model_or_path_is_a_clear_error():
    with pytest.raises(ConfigError, match="two text embedder backends joined by '\\|'"):
        _hub(model="sentence-transformers+use-numpy").require("text_embedder")
    with pytest.raises(ConfigError, match="text_embedder_path"):
        _hub(path="/tmp").require("text_embedder")
    with pytest.raises(ConfigError, match="english_below"):
        _hub(options={"english_below": 0}).require("text_embedder")
