"""The shared part of every backend: cheap constructor, locate, idempotent thread-safe load."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from models.errors import ConfigError
from models.registry import default_model, role_spec
from models.resolve import locate_weights
from models.types import ModelLocation

__all__ = ["LazyModel", "resolve_device", "resolve_dtype", "default_cache_dir", "quiet_transformers",
           "language_audio", "ranked_languages"]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "videoqa" / "models"


def resolve_device(device: str) -> str:
    """``auto`` is CUDA when a GPU is visible, else CPU."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def language_audio(audio: Any) -> Any:
    """``audio`` as the contiguous float32 array a Whisper language detection takes; empty is an error."""
    import numpy as np

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise ValueError("detect_language needs audio, not an empty array")
    return audio


class WhisperLanguages:
    """``detect_language`` and ``language_probabilities`` as every Whisper backend answers them.

    English-only models answer ``en`` without running; the backend supplies
    ``_detect(audio, languages)``, the ranking for non-empty float32 audio.
    """

    english_only: bool  # and load(), both from the backend's LazyModel

    def _detect(self, audio: Any, languages: Sequence[str] | None) -> list[tuple[str, float]]:
        raise NotImplementedError

    def _begin(self, audio: Any, language: str | None) -> tuple[Any, str | None]:
        """Before transcribing: the model loaded, the audio as contiguous float32, ``en`` for English-only models."""
        import numpy as np

        self.load()  # type: ignore[attr-defined]
        return np.ascontiguousarray(audio, dtype=np.float32), "en" if self.english_only else language

    def detect_language(self, audio: Any, languages: Sequence[str] | None = None) -> tuple[str, float]:
        return self.language_probabilities(audio, languages)[0]

    def language_probabilities(self, audio: Any, languages: Sequence[str] | None = None) -> list[tuple[str, float]]:
        self.load()  # type: ignore[attr-defined]
        if self.english_only:
            return [("en", 1.0)]
        return self._detect(language_audio(audio), languages)


def ranked_languages(probabilities: Iterable[tuple[str, float]],
                     languages: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """(language, probability) pairs best first; with ``languages``, only those, renormalised to sum to 1.

    A candidate list naming no language the model knows is a configuration error.
    """
    pairs = [(lang, float(p)) for lang, p in probabilities]
    if languages:
        wanted = set(languages)
        pairs = [(lang, p) for lang, p in pairs if lang in wanted]
        if not pairs:
            raise ConfigError(f"languages: none of {', '.join(languages)} is a language this Whisper model knows")
        total = sum(p for _, p in pairs) or 1.0
        pairs = [(lang, p / total) for lang, p in pairs]
    return sorted(pairs, key=lambda lp: lp[1], reverse=True)


def quiet_transformers() -> None:
    """No transformers progress bars ("Loading weights", "Writing model shards") among ours."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def resolve_dtype(device: str, dtype: str = "auto") -> Any:
    """The torch dtype for a device: ``auto`` is bfloat16 on CUDA and float32 elsewhere."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ConfigError(f"invalid dtype {dtype!r}, expected one of: auto, float32, bfloat16, float16") from None


class LazyModel:
    """Base class of backends. Subclasses set ``role`` and ``backend_name`` and implement ``_load``."""

    role: str = ""
    backend_name: str = ""

    def __init__(
        self,
        model: str | None = None,
        *,
        path: str | None = None,
        device: str = "auto",
        cache_dir: str | Path | None = None,
        hf_repo: str | None = None,
    ):
        spec = role_spec(self.role)
        self.model_name = model or default_model(self.role, self.backend_name)
        self.path = path
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        known = {c.model: c.hf_repo for c in (spec.full, spec.packaged) if c}
        self.hf_repo = hf_repo or known.get(self.model_name) or self._hf_repo_for(self.model_name)
        self._lock = threading.Lock()
        self._location: ModelLocation | None = None
        self._loaded = False
        self.load_seconds: float | None = None

    def _hf_repo_for(self, model: str) -> str | None:
        """The Hub repository of a model name that is not in the role table."""
        return model if "/" in model and not Path(model).exists() else None

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def location(self) -> ModelLocation | None:
        return self._location

    def locate(self) -> ModelLocation:
        if self._location is None:
            self._location = locate_weights(
                self.role,
                self.backend_name,
                self.model_name,
                local_path=self.path,
                hf_repo=self.hf_repo,
                cache_dir=self.cache_dir,
            )
        return self._location

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            location = self.locate()
            t0 = time.perf_counter()
            try:
                self._load(location, resolve_device(self.device))
            except ImportError as exc:
                raise ConfigError(
                    f"{self.role}: the {self.backend_name} backend needs the Python package {exc.name!r}, "
                    "which is not installed; install the full profile's libraries: pip install 'videoqa[full]'"
                ) from exc
            self.load_seconds = time.perf_counter() - t0
            self._loaded = True
            log.info(
                "loaded %s %s (%s) from %s in %.1f s",
                self.role, self.model_name, self.backend_name, location.source, self.load_seconds,
            )

    def _load(self, location: ModelLocation, device: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """A JSON-able summary: role, backend, model, where it was found."""
        loc = self._location
        return {
            "role": self.role,
            "backend": self.backend_name,
            "model": self.model_name,
            "path": str(loc.path) if loc else None,
            "source": loc.source if loc else None,
            "loaded": self._loaded,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, loaded={self._loaded})"
