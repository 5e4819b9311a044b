"""Qwen2.5-VL (transformers): descriptions of videos and answers from the clip around the best moments.

Frames are sampled by :func:`models.frames.sample_frames` (``fps`` 1 and ``max_pixels``
360*420 by default) and handed to the model's own processor and chat template as one
video. :class:`QwenVLDescriber` and :class:`QwenVLAnswerer` share one loaded model
when they point at the same weights.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from models.base import LazyModel, quiet_transformers, resolve_dtype
from models.frames import fit_pixels, sample_frames
from models.qwen3 import strip_think
from models.streaming import stream_generate
from models.types import Clip, ModelLocation

__all__ = ["QwenVLDescriber", "QwenVLAnswerer", "DESCRIBE_PROMPT", "answer_prompt", "unload_all"]

log = logging.getLogger(__name__)

DESCRIBE_PROMPT = "Please describe the video."

_SHARED: dict[tuple[str, str, str], tuple[Any, Any, threading.Lock]] = {}
_SHARED_LOCK = threading.Lock()


def unload_all() -> None:
    """Forget every loaded Qwen2.5-VL model (frees its memory once no backend holds it)."""
    with _SHARED_LOCK:
        _SHARED.clear()


def answer_prompt(question: str, context: str) -> str:
    """The instruction an answering model gets: the question, the transcript excerpts, the rules."""
    return (
        "You answer questions about a library of videos. You are shown a clip of one video and "
        "excerpts of what is said in it, each with its time.\n\n"
        f"Transcript excerpts:\n{context.strip() or '(no speech)'}\n\n"
        f"Question: {question.strip()}\n\n"
        "Answer in the language of the question, in at most three sentences, using only what the clip "
        "and the excerpts show, and cite the time label of each excerpt you used, like [00:12–00:18]. "
        "If they do not answer the question, say so."
    )


def _fit(frame: np.ndarray, max_pixels: int) -> np.ndarray:
    """An RGB frame shrunk to at most ``max_pixels`` pixels."""
    import cv2

    h, w = frame.shape[:2]
    nw, nh = fit_pixels(w, h, max_pixels)
    return frame if (nw, nh) == (w, h) else cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)


def _load_shared(path: Path, device: str, dtype_name: str) -> tuple[Any, Any, threading.Lock]:
    """One model and processor per (weights, device, dtype), shared by the describer and the answerer."""
    key = (str(path), device, dtype_name)
    with _SHARED_LOCK:
        if key not in _SHARED:
            from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

            quiet_transformers()
            dtype = resolve_dtype(device, dtype_name)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), dtype=dtype, local_files_only=True)
            model.to(device).eval()
            processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
            _SHARED[key] = (model, processor, threading.Lock())
        return _SHARED[key]


class _QwenVL(LazyModel):
    backend_name = "qwen2.5-vl"

    def __init__(self, model: str | None = None, *, fps: float = 1.0, max_pixels: int = 360 * 420,
                 max_frames: int = 64, max_new_tokens: int = 256, dtype: str = "auto",
                 min_new_tokens: int = 0, **kw):
        super().__init__(model, **kw)
        self.fps = fps
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens  # benchmarks force the output length with it
        self.dtype = dtype

    def _load(self, location: ModelLocation, device: str) -> None:
        self._model, self._processor, self._run_lock = _load_shared(location.path, device, self.dtype)

    def _inputs(self, text: str, clip: Clip | None, given: Sequence[tuple[float, np.ndarray]] | None = None) -> Any:
        """Chat-formatted model inputs: the text, and the clip's frames as one video when given.

        ``given``: (time, RGB frame) already decoded (the indexer's one decode pass) instead of the clip's.
        """
        from transformers.video_utils import VideoMetadata

        frames: list[np.ndarray] = []
        if given:
            frames = [f for _, f in given]
            if len(frames) > self.max_frames:
                keep = np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int)
                frames = [frames[i] for i in keep]
            frames = [_fit(f, self.max_pixels) for f in frames]
        elif clip is not None:
            _, frames = sample_frames(clip.path, self.fps, start=clip.start or 0.0, end=clip.end,
                                      max_frames=self.max_frames, max_pixels=self.max_pixels)
        content: list[dict[str, Any]] = [{"type": "video"}] if frames else []
        content.append({"type": "text", "text": text})
        prompt = self._processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                     add_generation_prompt=True)
        kwargs: dict[str, Any] = {}
        if frames:
            if len(frames) % 2:  # the vision tower groups frames in pairs
                frames.append(frames[-1])
            video = np.stack(frames)
            kwargs["videos"] = [video]
            kwargs["video_metadata"] = [VideoMetadata(total_num_frames=len(frames), fps=self.fps,
                                                      frames_indices=list(range(len(frames))),
                                                      height=video.shape[1], width=video.shape[2])]
            kwargs["do_sample_frames"] = False
            kwargs["size"] = {"shortest_edge": 4 * 28 * 28, "longest_edge": self.max_pixels}
            kwargs["cap_pixels_per_frame"] = True  # the per-frame pixel cap of the reference implementation
        inputs = self._processor(text=[prompt], return_tensors="pt", **kwargs)
        return inputs.to(self._model.device)

    def _generate_kwargs(self, inputs: Any) -> dict[str, Any]:
        return dict(**inputs, max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                    do_sample=False)

    def _run(self, text: str, clip: Clip | None, given: Sequence[tuple[float, np.ndarray]] | None = None) -> str:
        import torch

        self.load()
        with self._run_lock, torch.inference_mode():
            inputs = self._inputs(text, clip, given)
            out = self._model.generate(**self._generate_kwargs(inputs))
        new = out[0, inputs["input_ids"].shape[1]:]
        return strip_think(self._processor.decode(new, skip_special_tokens=True))

    def _stream(self, text: str, clip: Clip | None) -> Iterator[str]:
        self.load()
        with self._run_lock:
            inputs = self._inputs(text, clip)
            yield from stream_generate(self._model, self._processor.tokenizer, self._generate_kwargs(inputs))


class QwenVLDescriber(_QwenVL):
    """Describes a whole video, or a window of it ("please describe the video")."""

    role = "describer"

    def describe(self, video: Path, start: float | None = None, end: float | None = None,
                 frames: Sequence[tuple[float, np.ndarray]] | None = None) -> str:
        return self._run(DESCRIBE_PROMPT, Clip(Path(video), start, end), frames)


class QwenVLAnswerer(_QwenVL):
    """Answers a question from transcript excerpts with their times and the clip around the best moments."""

    role = "answerer"

    def answer(self, question: str, context: str, clip: Clip | None = None) -> str:
        return self._run(answer_prompt(question, context), clip)

    def stream(self, question: str, context: str, clip: Clip | None = None) -> Iterator[str]:
        yield from self._stream(answer_prompt(question, context), clip)
