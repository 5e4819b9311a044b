"""Silero VAD (the ONNX model shipped in the ``silero-vad`` wheel, run by onnxruntime).

The wheel's "sequence" export is used: it runs up to 512 frames (16 s) per ONNX call
instead of one 32-ms frame per call from a Python loop, with the same per-frame
probabilities (the library's ``get_speech_timestamps_sequence``; 4-5x faster on
2 cores, see docs/BENCHMARKS.md).
"""

from __future__ import annotations

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

    def _load(self, location: ModelLocation, device: str) -> None:
        import torch

        threads = torch.get_num_threads()
        # silero_vad sets torch's thread count to 1 when imported; keep ours.
        from silero_vad.sequence_vad import SileroVADSequence, get_speech_timestamps_sequence

        torch.set_num_threads(threads)
        self._model = SileroVADSequence(str(location.path), force_onnx_cpu=True)
        self._get_timestamps = get_speech_timestamps_sequence

    def speech_regions(self, audio: np.ndarray, sample_rate: int = 16000,
                       max_speech: float | None = None) -> list[SpeechRegion]:
        if audio.size == 0:
            return []
        self.load()
        # the sequence model keeps no state between calls, so threads need no lock
        stamps = self._get_timestamps(
            np.ascontiguousarray(audio, dtype=np.float32),
            self._model,
            threshold=self.threshold,
            sampling_rate=sample_rate,
            min_speech_duration_ms=self.min_speech_ms,
            min_silence_duration_ms=self.min_silence_ms,
            speech_pad_ms=self.speech_pad_ms,
            max_speech_duration_s=max_speech or float("inf"),
        )
        return [SpeechRegion(s["start"] / sample_rate, s["end"] / sample_rate) for s in stamps]
