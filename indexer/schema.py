"""Data classes of the index (the read side: the retriever imports these)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_VERSION", "TEXT_SPACE", "IMAGE_SPACE", "Keyframe", "SpeechSegment", "Moment", "Video", "format_time",
    "format_span",
]

SCHEMA_VERSION = 2  # 2: ctime_ns, AUTOINCREMENT ids
TEXT_SPACE = "text"  # the vector space of speech and description moments
IMAGE_SPACE = "image"  # the vector space of keyframes (CLIP)


def format_time(seconds: float, *, up: bool = False) -> str:
    """``mm:ss`` (or ``h:mm:ss`` past an hour), rounded down (or ``up``)."""
    total = max(0, math.ceil(seconds - 1e-6) if up else math.floor(seconds + 1e-6))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_span(start: float, end: float) -> str:
    """``mm:ss–mm:ss`` that contains the span: the start rounded down, the end up."""
    return f"{format_time(start)}–{format_time(end, up=True)}"


@dataclass
class Keyframe:
    """A frame chosen by the frame-difference method, with a small JPEG of it."""

    t: float
    score: float
    jpeg: bytes = field(repr=False, default=b"")
    width: int = 0
    height: int = 0
    id: int | None = None
    video_id: int | None = None


@dataclass
class SpeechSegment:
    """Transcribed speech with absolute times in the video."""

    start: float
    end: float
    text: str
    language: str | None = None


@dataclass
class Moment:
    """A stretch of a video that can be found and cited: speech, a description, a keyframe."""

    start: float
    end: float
    kind: str  # "speech" | "description" | "keyframe"
    text: str
    language: str | None = None
    id: int | None = None
    video_id: int | None = None

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Video:
    id: int
    content_id: str
    path: str
    name: str
    duration: float
    fps: float
    width: int
    height: int
    has_audio: bool
    language: str | None
    indexed_at: str
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0

    def same_file(self, stat: "os.stat_result") -> bool:
        """The file at ``path`` is unchanged since it was indexed (so its hash need not be read again)."""
        return (self.size, self.mtime_ns, self.ctime_ns) == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
