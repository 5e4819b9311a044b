"""Whisper through openai-whisper (PyTorch): the reference implementation, the choice on a GPU.

It takes the same options and gives the same output as
:class:`~models.whisper_ct2.FasterWhisperTranscriber`, so the indexer's windowing works with
either. Checkpoints are openai-whisper's ``.pt`` files (``torch.load(weights_only=True)``);
nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from models.base import LazyModel, WhisperLanguages, ranked_languages
from models.errors import ModelNotFoundError
from models.types import ModelLocation, Transcript, TranscriptSegment, Word

__all__ = ["OpenAIWhisperTranscriber", "whisper_cache_dir", "checkpoint_name"]

log = logging.getLogger(__name__)

# The names openai-whisper downloads under another file name (whisper._MODELS); every other
# official name is saved as NAME.pt.
_ALIASES = {"large": "large-v3", "turbo": "large-v3-turbo"}
DEFAULT_MODEL = "small"
OFFICIAL = ("tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
            "large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo")


def whisper_cache_dir() -> Path:
    """Where ``whisper.load_model(name)`` saves checkpoints: ``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "whisper"


def checkpoint_name(model: str) -> str:
    """The file name openai-whisper gives the checkpoint of an official model name."""
    return f"{_ALIASES.get(model, model)}.pt"


class OpenAIWhisperTranscriber(LazyModel, WhisperLanguages):
    """Transcribes one window of audio at a time with fixed decoding settings.

    Decoding follows DESIGN.md section 1.4 as the faster-whisper backend does: temperature 0
    (a tuple of temperatures turns on openai-whisper's fallback), beam search, the previous
    window's text as prompt. Options, named as in the faster-whisper backend:

    * ``beam_size``, ``temperature``;
    * ``no_repeat_ngram_size``: accepted so that settings can switch backends, and ignored:
      openai-whisper's decoder has no such option;
    * ``compute_type``: ``auto`` (float16 on CUDA, float32 on CPU) or ``float32``
      (openai-whisper has no integer quantisation; ``int8``-style values mean ``auto``);
    * ``cpu_threads``: when above 0, torch's thread count while transcribing (torch's
      setting is per process: it is restored afterwards);
    * ``max_new_tokens``: at most this many tokens per 30-s window (openai-whisper's
      ``sample_len``; None: its default, half the text context).

    ``model`` is an official name (``small`` by default; ``tiny.en``, ``turbo`` ...) or the path of a
    ``.pt`` checkpoint. Weights are looked for at the ``path`` setting (a file, or a folder
    holding ``NAME.pt``), then the model as a file, then openai-whisper's download cache.
    """

    role = "transcriber"
    backend_name = "openai-whisper"

    def __init__(self, model: str | None = None, *, beam_size: int = 5, temperature: float | tuple = 0.0,
                 no_repeat_ngram_size: int = 6, compute_type: str = "auto", cpu_threads: int = 0,
                 max_new_tokens: int | None = None, **kw):
        # Not the role table's default: that is a faster-whisper (CTranslate2) model.
        super().__init__(model or DEFAULT_MODEL, **kw)
        # The role table's Hub repositories are CTranslate2 conversions, not openai-whisper checkpoints.
        self.hf_repo = None
        self.beam_size = beam_size
        self.temperature = tuple(temperature) if isinstance(temperature, (list, tuple)) else float(temperature)
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.max_new_tokens = max_new_tokens
        self._run_lock = threading.Lock()

    @property
    def english_only(self) -> bool:
        if self._loaded:
            return not self._model.is_multilingual
        return self.model_name.endswith(".en")

    def locate(self) -> ModelLocation:
        if self._location is None:
            self._location = self._find()
        return self._location

    def _find(self) -> ModelLocation:
        file_name = checkpoint_name(self.model_name)
        if self.path:
            path = Path(self.path).expanduser()
            if path.is_dir() and (path / file_name).is_file():
                return ModelLocation((path / file_name).resolve(), "local path")
            if path.is_file():
                return ModelLocation(path.resolve(), "local path")
            what = f"holds no {file_name}" if path.is_dir() else "does not exist"
            raise ModelNotFoundError(f"{self.role}: the configured {self.role}_path {path} {what}")
        as_file = Path(self.model_name).expanduser()
        if as_file.is_file():
            return ModelLocation(as_file.resolve(), "local path")
        cached = whisper_cache_dir() / file_name
        if cached.is_file():
            return ModelLocation(cached, "openai-whisper cache")
        looked = [f"a file named {self.model_name!r}", f"openai-whisper's download cache ({cached})"]
        how = []
        if self.model_name in OFFICIAL:
            how.append(f"on a connected machine: python -c \"import whisper; whisper.load_model('{self.model_name}')\" "
                       f"saves {whisper_cache_dir() / file_name}; copy it to the same place here")
        else:
            how.append(f"name one of {', '.join(OFFICIAL)} or give the path of a .pt checkpoint")
        how.append(f"or set {self.role}_path to a local .pt checkpoint")
        raise ModelNotFoundError(
            f"{self.role}: model {self.model_name!r} ({self.backend_name}) not found; looked in: {'; '.join(looked)}. "
            f"To get it: {'; '.join(how)}"
        )

    def _load(self, location: ModelLocation, device: str) -> None:
        import whisper

        self._model = whisper.load_model(str(location.path), device=device)  # torch.load(weights_only=True)
        # Loaded from a path, openai-whisper keeps default cross-attention heads for word times;
        # an official checkpoint gets the heads tuned for it, as whisper.load_model(name) would.
        heads = getattr(whisper, "_ALIGNMENT_HEADS", {}).get(self.model_name)
        if heads is not None and location.path.name == checkpoint_name(self.model_name):
            try:
                self._model.set_alignment_heads(heads)
            except (RuntimeError, ValueError):
                log.warning("%s does not have the shape of Whisper %s; default alignment heads kept",
                            location.path, self.model_name)
        self._fp16 = device.startswith("cuda") and self.compute_type != "float32"

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None, language: str | None = None,
                   word_timestamps: bool = False, languages: Sequence[str] | None = None) -> Transcript:
        audio, language = self._begin(audio, language)
        if audio.size == 0:
            return Transcript([], language, 1.0 if language else 0.0)
        import torch

        with self._run_lock:
            threads = torch.get_num_threads()
            if self.cpu_threads > 0:
                torch.set_num_threads(self.cpu_threads)
            try:
                probability, ranked = 1.0, []
                if language is None:
                    ranked = ranked_languages(self._probabilities(audio).items(), languages)
                    language, probability = ranked[0]
                options: dict = {"beam_size": self.beam_size}
                if self.max_new_tokens is not None:
                    options["sample_len"] = self.max_new_tokens
                result = self._model.transcribe(
                    audio,
                    verbose=None,  # None: no printing and no progress bar
                    language=language,
                    task="transcribe",
                    temperature=self.temperature,
                    initial_prompt=prompt or None,
                    condition_on_previous_text=True,
                    word_timestamps=word_timestamps,
                    fp16=self._fp16,
                    **options,
                )
            finally:
                torch.set_num_threads(threads)
        duration = audio.size / 16000

        def clamp(t: float) -> float:  # a random or confused model can write times past the audio
            return min(max(float(t), 0.0), duration)

        segments = [
            TranscriptSegment(
                clamp(s["start"]), max(clamp(s["start"]), clamp(s["end"])), s["text"].strip(),
                float(s["avg_logprob"]), float(s["no_speech_prob"]),
                tuple(Word(clamp(w["start"]), max(clamp(w["start"]), clamp(w["end"])), w["word"])
                      for w in s.get("words") or ()),
            )
            for s in result["segments"]
            if s["text"].strip()
        ]
        return Transcript(segments, result.get("language") or language, probability, tuple(ranked))

    def _detect(self, audio: np.ndarray, languages: Sequence[str] | None) -> list[tuple[str, float]]:
        import torch

        with self._run_lock:
            threads = torch.get_num_threads()
            if self.cpu_threads > 0:
                torch.set_num_threads(self.cpu_threads)
            try:
                return ranked_languages(self._probabilities(audio).items(), languages)
            finally:
                torch.set_num_threads(threads)

    def _probabilities(self, audio: np.ndarray) -> dict[str, float]:
        """Every language's probability for the first 30 s, as openai-whisper detects it."""
        import torch
        from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim

        mel = log_mel_spectrogram(audio, self._model.dims.n_mels, padding=N_SAMPLES)
        mel = pad_or_trim(mel, N_FRAMES).to(self._model.device).to(torch.float16 if self._fp16 else torch.float32)
        _, probs = self._model.detect_language(mel)
        return {k: float(v) for k, v in probs.items()}
