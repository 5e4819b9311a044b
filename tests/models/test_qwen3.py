"""Qwen3 embedder and reranker on tiny random-weight models of the real architecture.

Random weights say nothing about quality: these tests check the code paths (loading,
pooling, padding, the attention mask, the prompt template), not the rankings.
"""

import threading

import numpy as np
import pytest

from models import ModelHub, ModelNotFoundError, ModelsConfig, RoleConfig
from models.qwen3 import DEFAULT_INSTRUCTION, Qwen3Reranker, Qwen3TextEmbedder, strip_think
from models.types import Reranker
from tests.models.test_backends import TextEmbedderContract

LONG_TEXT = " ".join(["Deep under every volcano there is a chamber full of hot magma."] * 12)
DOCS = [
    "Lava flows down the volcano.",
    LONG_TEXT,
    "Mix flour, water, salt and yeast into a soft dough.",
    "yes",
    "To fix a flat tire, first take the wheel off the bicycle frame. Saturn is the one with rings.",
]


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    from models.testing.tiny_qwen3 import make_tiny_qwen3_embedding, make_tiny_qwen3_reranker

    out = tmp_path_factory.mktemp("tiny-qwen3")
    return {
        "embedding": make_tiny_qwen3_embedding(out),
        # Same weights, a tokenizer that does not append <|endoftext|> (Qwen3-Embedding's first release).
        "embedding-v1": make_tiny_qwen3_embedding(out, append_end=False, name="qwen3-embedding-v1"),
        "reranker": make_tiny_qwen3_reranker(out),
    }


def _hub(tmp_path_factory, **roles):
    return ModelHub(ModelsConfig(profile="full", device="cpu", cache_dir=tmp_path_factory.mktemp("cache"),
                                 roles={k: RoleConfig(**v) for k, v in roles.items()}))


@pytest.fixture(scope="module")
def embedder(tiny_qwen3, tmp_path_factory):
    return _hub(tmp_path_factory, text_embedder={"path": str(tiny_qwen3["embedding"])}).required.text_embedder


@pytest.fixture(scope="module")
def reranker(tiny_qwen3, tmp_path_factory):
    return _hub(tmp_path_factory, reranker={"path": str(tiny_qwen3["reranker"])}).required.reranker


def _unpadded(batch):
    """The token ids of each row of a padded batch, without the padding."""
    return [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]


class TestQwen3TextEmbedder(TextEmbedderContract):
    """The shared contract, with the semantic check replaced by a structural one (random weights)."""

    def test_vectors_are_normalised_and_meaningful(self, embedder):
        assert isinstance(embedder, Qwen3TextEmbedder)
        assert embedder.dim == 64
        docs = embedder.embed_documents(["Lava flows down the volcano.", "Knead the dough and bake the bread."])
        assert docs.shape == (2, embedder.dim) and docs.dtype == np.float32
        assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
        assert not np.allclose(docs[0], docs[1], atol=1e-3)
        q = embedder.embed_query("what comes out of a volcano?")
        assert q.shape == (embedder.dim,) and q.dtype == np.float32
        assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-4
        assert embedder.embed_documents([]).shape == (0, embedder.dim)

    def test_pooling_ignores_padding(self, embedder):
        alone = embedder.embed_documents(["Lava flows down the volcano."])[0]
        batched = embedder.embed_documents(["Lava flows down the volcano.", LONG_TEXT])
        reversed_ = embedder.embed_documents([LONG_TEXT, "Lava flows down the volcano."])
        assert np.abs(alone - batched[0]).max() < 1e-4
        assert np.abs(alone - reversed_[1]).max() < 1e-4
        assert np.abs(batched[1] - reversed_[0]).max() < 1e-4

    def test_batches_are_split_by_batch_size(self, tiny_qwen3, embedder):
        small = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding"]), device="cpu", batch_size=2)
        vecs = small.embed_documents(DOCS)
        assert vecs.shape == (len(DOCS), 64)
        assert np.abs(vecs - embedder.embed_documents(DOCS)).max() < 1e-4

    def test_pooling_is_right_with_right_padding_too(self, tiny_qwen3, embedder):
        right = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding"]), device="cpu")
        right.load()
        right._tokenizer.padding_side = "right"
        batch = right._inputs(["Lava", LONG_TEXT])
        assert batch["attention_mask"][0, -1] == 0  # really padded on the right
        vecs = right.embed_documents(["Lava flows down the volcano.", LONG_TEXT])
        assert np.abs(vecs - embedder.embed_documents(["Lava flows down the volcano.", LONG_TEXT])).max() < 1e-4

    @pytest.mark.parametrize("kind,tokenizer_appends", [("embedding", True), ("embedding-v1", False)])
    def test_every_text_ends_with_one_end_of_text_token(self, tiny_qwen3, kind, tokenizer_appends):
        model = Qwen3TextEmbedder(path=str(tiny_qwen3[kind]), device="cpu")
        model.load()
        end_id = model._tokenizer.convert_tokens_to_ids("<|endoftext|>")
        assert (model._tokenizer("Lava")["input_ids"][-1] == end_id) is tokenizer_appends
        batch = model._inputs(["Lava", LONG_TEXT])
        assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())
        for row in _unpadded(batch):
            assert row[-1] == end_id and end_id not in row[:-1]
        short = Qwen3TextEmbedder(path=str(tiny_qwen3[kind]), device="cpu", max_length=8)
        batch = short._inputs([LONG_TEXT, "Lava"])
        assert batch["input_ids"].shape[1] == 8
        assert all(row[-1] == end_id and end_id not in row[:-1] for row in _unpadded(batch))

    def test_same_vectors_whether_the_tokenizer_appends_the_end_token_or_not(self, tiny_qwen3, embedder):
        v1 = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding-v1"]), device="cpu")
        assert np.abs(v1.embed_documents(DOCS) - embedder.embed_documents(DOCS)).max() < 1e-4
        assert np.abs(v1.embed_query("lava?") - embedder.embed_query("lava?")).max() < 1e-4

    def test_query_instruction_is_applied(self, embedder):
        q = "what comes out of a volcano?"
        assert embedder.format_query(q) == f"Instruct: {DEFAULT_INSTRUCTION}\nQuery:{q}"
        query = embedder.embed_query(q)
        assert not np.allclose(query, embedder.embed_documents([q])[0], atol=1e-3)
        assert np.abs(query - embedder.embed_documents([f"Instruct: {DEFAULT_INSTRUCTION}\nQuery:{q}"])[0]).max() < 1e-4

    def test_query_instruction_is_an_option(self, tiny_qwen3, embedder):
        plain = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding"]), device="cpu", query_instruction="")
        assert np.abs(plain.embed_query("lava") - embedder.embed_documents(["lava"])[0]).max() < 1e-4
        custom = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding"]), device="cpu", query_instruction="Find lava")
        assert custom.format_query("x") == "Instruct: Find lava\nQuery:x"

    def test_concurrent_use(self, embedder):
        expected = embedder.embed_documents(DOCS)
        results, errors = [], []

        def work():
            try:
                results.append(embedder.embed_documents(DOCS))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(np.abs(r - expected).max() < 1e-4 for r in results)


class TestQwen3Reranker:
    def test_is_a_reranker(self, reranker):
        assert isinstance(reranker, Reranker) and isinstance(reranker, Qwen3Reranker)

    def test_yes_and_no_are_single_tokens(self, reranker):
        reranker.load()
        assert reranker._yes_id != reranker._no_id
        assert reranker._tokenizer.convert_ids_to_tokens([reranker._yes_id, reranker._no_id]) == ["yes", "no"]

    def test_scores_are_probabilities(self, reranker):
        scores = reranker.score("what comes out of a volcano?", DOCS)
        assert len(scores) == len(DOCS)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
        assert reranker.score("anything", []) == []

    def test_batched_scores_equal_one_by_one(self, reranker):
        query = "what comes out of a volcano?"
        batched = reranker.score(query, DOCS)
        alone = [reranker.score(query, [d])[0] for d in DOCS]
        assert np.abs(np.array(batched) - np.array(alone)).max() < 1e-4

    def test_batch_size_splits_and_order_is_deterministic(self, tiny_qwen3, reranker):
        query = "what comes out of a volcano?"
        expected = reranker.score(query, DOCS)
        small = Qwen3Reranker(path=str(tiny_qwen3["reranker"]), device="cpu", batch_size=2)
        assert np.abs(np.array(small.score(query, DOCS)) - np.array(expected)).max() < 1e-4
        assert reranker.score(query, DOCS) == expected
        permuted = reranker.score(query, DOCS[::-1])[::-1]
        assert np.abs(np.array(permuted) - np.array(expected)).max() < 1e-4
        assert np.argsort(permuted).tolist() == np.argsort(expected).tolist()

    def test_inputs_wrap_each_pair_in_the_template(self, reranker):
        reranker.load()
        tok = reranker._tokenizer
        assert reranker._prefix_ids == tok.encode(Qwen3Reranker.PREFIX, add_special_tokens=False)
        assert tok.decode(reranker._suffix_ids).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        batch = reranker._inputs("what is lava?", ["Lava", LONG_TEXT])
        assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].all()  # padded on the left
        n, m = len(reranker._prefix_ids), len(reranker._suffix_ids)
        pair = f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: what is lava?\n<Document>: "
        for row, doc in zip(_unpadded(batch), ["Lava", LONG_TEXT]):
            assert row[:n] == reranker._prefix_ids and row[-m:] == reranker._suffix_ids
            assert tok.decode(row[n:-m]) == pair + doc
        text = tok.decode(_unpadded(batch)[0])
        assert text.startswith("<|im_start|>system\nJudge whether the Document meets the requirements")
        assert 'the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n<Instruct>: ' in text

    def test_truncation_keeps_the_template(self, tiny_qwen3, reranker):
        reranker.load()
        n, m = len(reranker._prefix_ids), len(reranker._suffix_ids)
        short = Qwen3Reranker(path=str(tiny_qwen3["reranker"]), device="cpu", max_length=n + m + 10)
        batch = short._inputs("what is lava?", [LONG_TEXT, "Lava"])
        assert batch["input_ids"].shape[1] == n + m + 10
        for row in _unpadded(batch):
            assert row[:n] == reranker._prefix_ids and row[-m:] == reranker._suffix_ids
        assert all(0.0 <= s <= 1.0 for s in short.score("what is lava?", [LONG_TEXT]))

    def test_instruction_is_an_option(self, tiny_qwen3):
        custom = Qwen3Reranker(path=str(tiny_qwen3["reranker"]), device="cpu", instruction="Judge the answer")
        assert custom.format_pair("q", "d") == "<Instruct>: Judge the answer\n<Query>: q\n<Document>: d"


class TestLoading:
    @pytest.mark.parametrize("cls,kind", [(Qwen3TextEmbedder, "embedding"), (Qwen3Reranker, "reranker")])
    def test_load_twice_loads_once(self, tiny_qwen3, cls, kind):
        model = cls(path=str(tiny_qwen3[kind]), device="cpu")
        assert not model.loaded
        calls = []
        real = model._load
        model._load = lambda location, device: (calls.append(device), real(location, device))
        threads = [threading.Thread(target=model.load) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        model.load()
        assert calls == ["cpu"] and model.loaded
        assert model.info()["source"] == "local path"

    @pytest.mark.parametrize("role", ["text_embedder", "reranker"])
    def test_missing_path_names_the_role(self, tmp_path_factory, tmp_path, role):
        model = _hub(tmp_path_factory, **{role: {"path": str(tmp_path / "nowhere")}}).require(role)
        assert not model.loaded  # building is cheap and does not look for weights
        with pytest.raises(ModelNotFoundError, match=role):
            model.load()

    def test_registry_builds_the_qwen3_backends(self, tmp_path_factory):
        hub = _hub(tmp_path_factory)
        assert type(hub.required.text_embedder) is Qwen3TextEmbedder
        assert type(hub.required.reranker) is Qwen3Reranker
        assert hub.required.reranker.model_name == "Qwen/Qwen3-Reranker-0.6B"


@pytest.mark.parametrize("text,expected", [
    ("<think>\nlet me see\n</think>\n\nThe answer is 42.", "The answer is 42."),
    ("<think>\n\n</think>\n\nLava.", "Lava."),
    ("Plain answer.", "Plain answer."),
    ("A <think>aside</think>B <think>\nmore\n</think>C", "A B C"),
    ("reasoning left from the prompt's tag</think>\nFinal.", "Final."),
    ("Cut short <think>never closed", "Cut short"),
    ("", ""),
])
def test_strip_think(text, expected):
    assert strip_think(text) == expected


def test_bfloat16_weights_give_float32_outputs(tiny_qwen3):
    """The dtype CUDA gets by default, exercised on the CPU: outputs stay float32 and in range."""
    embedder = Qwen3TextEmbedder(path=str(tiny_qwen3["embedding"]), device="cpu", dtype="bfloat16")
    vecs = embedder.embed_documents(DOCS[:2])
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    reranker = Qwen3Reranker(path=str(tiny_qwen3["reranker"]), device="cpu", dtype="bfloat16")
    assert all(0.0 <= s <= 1.0 for s in reranker.score("lava?", DOCS[:2]))
