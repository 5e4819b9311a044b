"""Silero VAD (the ONNX model shipped in the ``silero-vad`` wheel, run by onnxruntime)."""

from __future__ import annotations

import threading
import numpy as np

from models.base import LazyModel
from models.types import ModelLocation, SpeechRegion

__all__ = ["SileroVoiceDetector"]


class SileroVoiceDetector(LazyModel):
    """Finds speech in 16 kHz mono audio.

    Options: ``threshold`` (speech probability), ``min_speech_ms``, ``min_silence_ms``
    (silence shorter than this does not split speech) and ``speech_pad_ms``.
    """

    role = "voice_activity"
    backend_name = "silero"

    def __init__(self, model: str | None = None, *, threshold: float = 0.5, min_speech_ms: int = 250,
                 min_silence_ms: int = 500, speech_pad_ms: int = 200, **kw):
        super().__init__(model, **kw)
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self._run_lock = threading.Lock()  # the ONNX wrapper keeps recurrent state

    def _load(self, location: ModelLocation, device: str) -> None:
        import torch

        threads = torch.get_num_threads()
        # silero_vad sets torch's thread count to 1 when imported; keep ours.
        from silero_vad.utils_vad import OnnxWrapper, get_speech_timestamps

        torch.set_num_threads(threads)
        self._model = OnnxWrapper(str(location.path), force_onnx_cpu=True)
        self._get_timestamps = get_speech_timestamps

    def speech_regions(self, audio: np.ndarray, sample_rate: int = 16000,
                       max_speech: float | None = None) -> list[SpeechRegion]:
        if audio.size == 0:
            return []
        self.load()
        import torch

        with self._run_lock:
            stamps = self._get_timestamps(
                torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                self._model,
                threshold=self.threshold,
                sampling_rate=sample_rate,
                min_speech_duration_ms=self.min_speech_ms,
                min_silence_duration_ms=self.min_silence_ms,
                speech_pad_ms=self.speech_pad_ms,
                max_speech_duration_s=max_speech or float("inf"),
            )
        return [SpeechRegion(s["start"] / sample_rate, s["end"] / sample_rate) for s in stamps]
