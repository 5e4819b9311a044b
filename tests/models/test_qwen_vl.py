"""Qwen2.5-VL's real code paths on a tiny random-weight model: chat template, processor, video, generate."""

from pathlib import Path

import numpy as np
import pytest

from models.qwen_vl import QwenVLAnswerer, QwenVLDescriber, answer_prompt
from models.types import Answerer, Clip, Describer
from tests.conftest import SAMPLE_MEDIA

VIDEO = SAMPLE_MEDIA / "volcano_lecture.mp4"


@pytest.fixture(scope="module")
def tiny_vl(tiny_models) -> Path:
    return tiny_models.parent / "qwen2.5-vl"


@pytest.fixture(scope="module")
def describer(tiny_vl):
    return QwenVLDescriber(path=str(tiny_vl), device="cpu", max_new_tokens=6, min_new_tokens=6, max_frames=6,
                           max_pixels=112 * 112)


@pytest.fixture(scope="module")
def answerer(tiny_vl):
    return QwenVLAnswerer(path=str(tiny_vl), device="cpu", max_new_tokens=6, min_new_tokens=6, max_frames=4,
                          max_pixels=112 * 112)


def test_protocols(describer, answerer):
    assert isinstance(describer, Describer) and isinstance(answerer, Answerer)


def test_chat_template_and_processor_with_a_video(describer):
    describer.load()
    inputs = describer._inputs("Please describe the video.", Clip(VIDEO, 0.0, 6.0))
    ids = inputs["input_ids"][0].tolist()
    tok = describer._processor.tokenizer
    video_pad = tok.convert_tokens_to_ids("<|video_pad|>")
    start, end = tok.convert_tokens_to_ids("<|vision_start|>"), tok.convert_tokens_to_ids("<|vision_end|>")
    grid = inputs["video_grid_thw"][0].tolist()
    assert grid[0] == 3  # 6 frames at 1 fps, grouped in pairs
    assert ids.count(video_pad) == grid[0] * grid[1] * grid[2] // 4  # spatial merge 2x2
    assert ids.index(start) < ids.index(video_pad) < ids.index(end)
    assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(2.0)  # 2 frames per patch at 1 fps
    assert inputs["pixel_values_videos"].shape[0] == grid[0] * grid[1] * grid[2]
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>user\n") and text.rstrip().endswith("<|im_start|>assistant")


def test_pixels_and_frames_are_capped(describer):
    describer.load()
    inputs = describer._inputs("x", Clip(VIDEO))  # the whole 22-s video: capped at 6 frames
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert t == 3 and h * w * 14 * 14 <= 112 * 112 * 1.3


def test_generate_writes_the_forced_length(describer):
    import torch

    describer.load()
    inputs = describer._inputs("Please describe the video.", Clip(VIDEO, 0.0, 4.0))
    with torch.inference_mode():
        out = describer._model.generate(**describer._generate_kwargs(inputs))
    assert out.shape[1] - inputs["input_ids"].shape[1] == 6
    assert isinstance(describer.describe(VIDEO, 0.0, 4.0), str)


def test_answer_and_stream_agree_and_share_the_model(describer, answerer):
    clip = Clip(VIDEO, 6.0, 12.0)
    text = answerer.answer("What flows down?", "[00:08–00:13] red lava flows", clip)
    streamed = "".join(answerer.stream("What flows down?", "[00:08–00:13] red lava flows", clip)).strip()
    assert streamed == text
    describer.load()
    assert answerer._model is describer._model  # one copy of the weights for both roles
    assert answerer.answer("What flows down?", "", None) is not None  # text only, no clip


def test_prompt_carries_question_and_times():
    p = answer_prompt("Which planet has rings?", "[00:08–00:15] Saturn is the one with rings.")
    assert "Which planet has rings?" in p and "[00:08–00:15]" in p and "language of the question" in p


def test_frames_sampling_is_upright_rgb():
    from models.frames import sample_frames

    times, frames = sample_frames(VIDEO, 1.0, start=2.0, end=6.0, max_frames=10, max_pixels=64 * 64)
    assert 4 <= len(frames) <= 5 and times[0] >= 1.9 and times[-1] <= 6.01
    assert all(f.dtype == np.uint8 and f.shape[2] == 3 and f.shape[0] * f.shape[1] <= 64 * 64 for f in frames)
