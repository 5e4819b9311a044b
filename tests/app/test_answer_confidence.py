"""What the answer step keeps of a written answer: the text before its label, how surely it was
written (``answer_p``, recorded), and ``answer_from_best_moment``, which sends an answer written from
another line than its video's best moment back to that moment's line.

The recorder's arithmetic runs on the tiny random Qwen2's tokenizer."""

import re

import pytest

from app.answering import _answer_text, _generated_candidate, answer_events, cites_best_moment, context_of
from retriever import Hit, ScoredMoment


def test_the_answer_is_what_comes_before_its_first_label():
    assert _answer_text("hot magma. [00:01–00:06] (speech) Deep under every volcano") == "hot magma."
    assert _answer_text("[00:03–00:09] The mayor of the town.") == "The mayor of the town."  # label first
    assert _answer_text("Saturn.") == "Saturn."


def test_confidence_is_the_least_probable_token_before_the_label(tmp_path):
    import torch
    from transformers import AutoTokenizer

    from models.qwen_text import TokenConfidence
    from models.testing.tiny_qwen2 import make_tiny_qwen2

    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_qwen2(tmp_path)))
    ids = tokenizer.encode(" Saturn. [00:08–00:13]", add_special_tokens=False)
    label = next(n for n in range(len(ids)) if "[" in tokenizer.decode(ids[:n + 1]))
    word = next(n for n in range(len(ids)) if any(ch.isalpha() for ch in tokenizer.decode([ids[n]])))
    probs = [0.8 if n < label else 0.01 for n in range(len(ids))]  # the label's tokens do not count
    probs[word] = 0.5  # the answer's least sure token
    recorder = TokenConfidence()
    for token, p in zip(ids, probs):  # logits whose softmax gives ``token`` probability p
        logits = torch.full((1, len(tokenizer)), float(torch.log(torch.tensor((1 - p) / (len(tokenizer) - 1)))))
        logits[0, token] = float(torch.log(torch.tensor(p)))
        assert recorder(torch.zeros(1, 3, dtype=torch.long), logits.clone()).equal(logits)  # it only reads
    assert [t for t, _ in recorder.steps] == ids
    assert recorder.answer_p(tokenizer) == pytest.approx(0.5, abs=1e-4)
    assert TokenConfidence().answer_p(tokenizer) is None  # nothing written


# -- answer_from_best_moment ---------------------------------------------------------------------

KNEAD = ScoredMoment(1.0, 7.0, "speech", "Press and fold the dough for 10 minutes.", 0.4, {})
OVEN = ScoredMoment(15.0, 20.0, "speech", "Put the dough in the oven until the top turns golden brown.", 0.9, {})
QUESTION = "how long should the loaf stay in the oven?"


def _bread_hit():
    return Hit(1, "/nowhere/bread_baking.mp4", "bread_baking.mp4", 0.8, {"keyword": 0.8}, [OVEN, KNEAD], 23.0)


class _Written:
    """An answerer that writes given text: the input of these tests of the answer step's choice (the
    packaged model's own words cannot be chosen; its code paths are tested in tests/models)."""

    def __init__(self, text: str):
        self.text = text

    def stream(self, question, context, clip=None):
        yield from re.findall(r"\S+\s*", self.text)  # pieces, as a streaming model gives them


def test_an_answer_written_from_another_line_than_the_best_moment_falls_back():
    hit = _bread_hit()
    context = context_of(hit)
    wrong = _generated_candidate(hit, "10 minutes. [00:01–00:07]", context, QUESTION)
    right = _generated_candidate(hit, "until the top turns golden brown. [00:15–00:20]", context, QUESTION)
    assert wrong is not None and not cites_best_moment(wrong, hit)
    assert right is not None and cites_best_moment(right, hit)
    for best_only, method in ((True, "extractive-fallback"), (False, "generative")):
        events = list(answer_events(QUESTION, [hit], _Written("10 minutes. [00:01–00:07]"), None,
                                    best_moment_only=best_only))
        answer = events[-1].answer
        assert answer.candidates[0].method == method
        if best_only:  # the best moment's line, citing it, and what the model wrote is kept for the record
            assert answer.answer == OVEN.text and answer.citations[0].start == OVEN.start
            assert answer.candidates[0].generated == "10 minutes. [00:01–00:07]"
    general = list(answer_events(QUESTION, [hit], _Written("10 minutes. [00:01–00:07]"), None,
                                 best_moment_only=True, general=True))[-1].answer
    assert general.candidates[0].method == "generative"  # a whole-video question draws on every line


@pytest.mark.slow
def test_answer_from_best_moment_from_a_file_holding_only_that_line(generative_qa, generative_env, tmp_path):
    """The packaged model on the sample library, with the default and with the file's ``false``: the
    same words written for each video (same model, same prompt), kept or sent back to the best
    moment's line exactly as the setting says. (Here the model answers the oven question from the
    kneading line, "10 minutes.", so the two differ; the checks hold whatever another CPU writes.)"""
    from app import VideoQA, load_settings

    toml = tmp_path / "videoqa.toml"
    toml.write_text("answer_from_best_moment = false\n")
    qa = VideoQA(load_settings(config=toml, env=generative_env))  # the loaded model is shared
    assert generative_qa.settings.answer_from_best_moment is True and qa.settings.answer_from_best_moment is False
    answers = {True: generative_qa.ask(QUESTION), False: qa.ask(QUESTION)}
    assert [c.generated for c in answers[True].candidates] == [c.generated for c in answers[False].candidates]
    for best_only, answer in answers.items():
        assert answer.candidates
        for c in answer.candidates:
            hit = next(h for h in answer.hits if h.video == c.video)
            written = _generated_candidate(hit, c.generated, context_of(hit), QUESTION) if c.generated else None
            kept = written is not None and (not best_only or cites_best_moment(written, hit))
            assert (c.method == "generative") is kept, (best_only, c.to_dict())


@pytest.mark.slow
def test_int8_from_a_file_holding_only_that_line(generative_qa, generative_env, tmp_path):
    """``answerer_quantization = "int8"`` as docs/SETTINGS.md shows it: the packaged model is loaded
    once for both roles with int8 blocks (the float32 one of the other tests stays as it was), and
    answers from the sample library, citing the video that search found."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from app import VideoQA, load_settings

    toml = tmp_path / "videoqa.toml"
    toml.write_text('answerer_quantization = "int8"\n')
    qa = VideoQA(load_settings(config=toml, env=generative_env))
    answer = qa.ask("which planet has rings?")
    answerer, reranker = qa.hub.required.answerer, qa.hub.required.reranker
    assert answerer._model is reranker._model and reranker.batch_size == 1
    blocks = answerer._model.model.layers
    assert all(isinstance(layer.mlp.down_proj, Int8Linear) and isinstance(layer.self_attn.q_proj, Int8Linear)
               for layer in blocks)
    assert type(answerer._model.lm_head) is torch.nn.Linear
    assert not isinstance(generative_qa.hub.required.answerer._model.model.layers[0].mlp.down_proj, Int8Linear)
    assert answer.found and answer.method.endswith("+rerank") and answer.candidates
    assert answer.citations and answer.citations[0].video.endswith("solar_system.mp4"), answer.to_dict()


def test_speech_the_best_moment_runs_on_into_counts_as_the_best_moment():
    """A sentence the indexer cut at a pause past 7 s is two moments; the answer may lie in the part
    search did not rank first. The part it runs on into (no pause between) is in the answerer's context,
    may be cited, and is in the extractive answer; a line after a pause is not (the kneading line)."""
    from indexer.schema import Moment
    from retriever.api import _add_context

    first = Moment(6.14, 10.21, "speech", "And so my fellow Americans ask not", "en", 1, 1)
    rest = Moment(10.21, 16.36, "speech", "what your country can do for you ask what you can do for your country",
                  "en", 2, 1)
    later = Moment(19.0, 21.0, "speech", "A pause later, another thought.", "en", 3, 1)
    best = ScoredMoment(rest.start, rest.end, "speech", rest.text, 0.9, {}, id=2)
    _add_context([best], [first, rest, later], gap=3.0)
    assert [m.id for m in best.context] == [1, 3]
    hit = Hit(1, "/nowhere/jfk.mp4", "jfk.mp4", 0.8, {"vectors": 0.8}, [best], 30.0)
    question = "which nation's citizens is the speaker addressing?"
    context = context_of(hit)
    assert "[00:06–00:11] (speech) And so my fellow Americans" in context and "another thought" not in context
    written = _generated_candidate(hit, "Americans. [00:06–00:11]", context, question)
    assert written is not None and cites_best_moment(written, hit)
    assert written.citations[0].start == first.start
    answer = list(answer_events(question, [hit], None, None))[-1].answer  # extractive
    assert answer.answer.startswith("And so my fellow Americans ask not what your country")
    assert (answer.citations[0].start, answer.citations[0].end) == (best.start, best.end)  # the cited span
