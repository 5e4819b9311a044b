"""Model roles, backends and where their weights come from.

This package imports nothing from ``indexer``, ``retriever`` or ``app``. Backends are
registered by name in :mod:`models.registry` and built lazily by :class:`models.hub.ModelHub`.
"""

from models.errors import (
    ConfigError,
    IndexLockedError,
    IndexMismatchError,
    MediaError,
    ModelNotFoundError,
    UnknownBackendError,
    VideoQAError,
)
from models.hub import ModelHub, ModelsConfig, RoleConfig, report, resolve_profile
from models.registry import ROLE_NAMES, ROLES, backends, create, register
from models.types import (
    Answerer,
    Describer,
    FrameEmbedder,
    ModelLocation,
    Reranker,
    SpeechRegion,
    TextEmbedder,
    Transcriber,
    Transcript,
    TranscriptSegment,
    VoiceDetector,
)

__all__ = [
    "Answerer", "ConfigError", "Describer", "FrameEmbedder", "IndexLockedError", "IndexMismatchError",
    "MediaError", "ModelHub", "ModelLocation", "ModelNotFoundError", "ModelsConfig", "ROLES", "ROLE_NAMES",
    "Reranker", "RoleConfig", "SpeechRegion", "TextEmbedder", "Transcriber", "Transcript",
    "TranscriptSegment", "UnknownBackendError", "VideoQAError", "VoiceDetector", "backends", "create",
    "register", "report", "resolve_profile",
]
