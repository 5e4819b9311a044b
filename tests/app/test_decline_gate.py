"""The packaged answerer's decline gate: it declines by a measured probability, not by greedy choice.

Code paths run on the tiny random Qwen2 (the gate's forcing and masking are ours, not the
model's words); the setting is checked as the docs show it, from a file holding only its line."""

import pytest

from app.answering import answer_events
from retriever import Hit, ScoredMoment


def _hit(name="solar_system.mp4", video_id=1):
    moments = [ScoredMoment(24.0, 32.0, "speech", "Jupiter is the largest planet, and Saturn is the one with rings.",
                            0.9, {})]
    return Hit(video_id, f"/nowhere/{name}", name, 0.8, {"keyword": 0.8}, moments, 40.0)


def test_the_gate_reads_p_at_the_first_token_then_forces_or_forbids_the_reply():
    import torch

    from models.qwen_text import DeclineGate

    logits = torch.zeros(1, 6)
    logits[0, 2] = 2.0  # token 2 begins the reply: P = e^2 / (e^2 + 5) = 0.596
    prompt = torch.zeros(1, 10, dtype=torch.long)
    below = DeclineGate(10, [2], [2, 3, 5], gate=0.7)
    scores = below(prompt, logits.clone())
    assert below.p == pytest.approx(0.596, abs=1e-3)
    assert scores[0, 2] == float("-inf") and scores[0].argmax() != 2  # it cannot begin the reply
    assert torch.equal(below(torch.zeros(1, 11, dtype=torch.long), logits.clone()), logits)  # later steps untouched

    above = DeclineGate(10, [2], [2, 3, 5], gate=0.5)
    steps = [logits.clone()] + [torch.randn(1, 6) for _ in range(3)]  # later steps: whatever the model says
    written = [int(above(torch.zeros(1, 10 + n, dtype=torch.long), s).argmax()) for n, s in enumerate(steps)]
    assert written == [2, 3, 5, 5]  # the whole reply, then the end of the turn (last id) only


@pytest.fixture(scope="module")
def tiny_answerer(tmp_path_factory):
    from models.qwen_text import QwenAnswerer
    from models.testing.tiny_qwen2 import make_tiny_qwen2

    folder = make_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))
    return QwenAnswerer(path=str(folder), device="cpu", cache_dir=tmp_path_factory.mktemp("cache"),
                        max_answer_tokens=24)


def test_a_gate_at_or_below_p_declines_and_one_above_1_never_does(tiny_answerer):
    from models.qwen_text import NOT_FOUND

    context = "[00:24–00:32] (speech) Saturn is the one with rings."
    tiny_answerer.decline_gate = 1e-12
    assert tiny_answerer.answer("which planet has rings?", context).strip() == f"{NOT_FOUND}."
    p = tiny_answerer.last_decline_p
    assert p is not None and 0 < p < 1
    tiny_answerer.decline_gate = 2.0
    written = tiny_answerer.answer("which planet has rings?", context)
    assert not written.lower().startswith("not") and tiny_answerer.last_decline_p == pytest.approx(p)
    tiny_answerer.decline_gate = 0.0  # off: greedy decoding alone, nothing measured
    tiny_answerer.answer("which planet has rings?", context)
    assert tiny_answerer.last_decline_p is None


def test_declined_by_the_gate_for_every_video_is_not_found(tiny_answerer):
    tiny_answerer.decline_gate = 1e-12
    hits = [_hit(), _hit("other.mp4", 2)]
    answer = list(answer_events("which planet has rings?", hits, tiny_answerer, None,
                                declined_not_found=True))[-1].answer
    assert not answer.found and answer.closest
    assert all(c.method == "extractive-fallback" and 0 < c.decline_p < 1 for c in answer.candidates)
    assert all("decline_p" in c for c in answer.to_dict()["candidates"])


def test_decline_gate_from_a_file_holding_only_that_line(tmp_path, settings_env):
    from app import VideoQA, load_settings

    toml = tmp_path / "videoqa.toml"
    toml.write_text("decline_gate = 0.35\n")
    env = {k: v for k, v in settings_env.items() if k not in ("VIDEOQA_ANSWERER", "VIDEOQA_RERANKER")}
    qa = VideoQA(load_settings(config=toml, env=env))
    assert qa.settings.decline_gate == 0.35
    assert qa.hub.required.answerer.decline_gate == 0.35  # built, not loaded: the option reaches the answerer


def test_an_answer_that_only_repeats_the_question_falls_back():
    from app.answering import _generated_candidate, context_of, repeats_question

    question = "which planet from the sun is the earth?"
    assert repeats_question("Earth.", question) and repeats_question("The Earth", question)
    assert not repeats_question("The third.", question) and not repeats_question("", question)
    hit = _hit()
    hit.moments = [ScoredMoment(14.0, 19.0, "speech", "Earth is the third planet from the Sun, and it has one moon.",
                                0.9, {})]
    context = context_of(hit)
    assert _generated_candidate(hit, "Earth. [00:14–00:19]", context, question) is None  # its video's line instead
    kept = _generated_candidate(hit, "The third. [00:14–00:19]", context, question)
    assert kept is not None and kept.answer == "The third." and kept.citations[0].start == 14.0
