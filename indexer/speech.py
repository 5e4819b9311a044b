"""Speech to timed text: Silero VAD regions, grouped into windows, transcribed by Whisper.

Windowing (DESIGN.md section 1.4):

* VAD finds the speech. Consecutive speech regions are grouped into windows of at most
  ``max_window`` seconds of speech; silence between the regions of a window is cut out
  (as faster-whisper's own VAD filter does) and segment times are mapped back.
* A region longer than a window is split into pieces that overlap by ``overlap``
  seconds; segments in an overlap are kept once, on the side of the overlap's centre.
* Each window is transcribed with the previous window's text as its prompt.
* Guard against ending early: when Whisper stops well before the end of the speech in
  a window (music or noise can make it emit end-of-text), the rest of that window is
  transcribed again on its own.

Every segment keeps absolute start and end times in the video.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from indexer.schema import Moment, SpeechSegment
from models.types import SpeechRegion, Transcriber, VoiceDetector

__all__ = ["SpeechOptions", "Window", "plan_windows", "transcribe_speech", "group_moments", "main_language"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechOptions:
    max_window: float = 28.0  # seconds of speech per Whisper call (Whisper sees 30 s at a time)
    overlap: float = 1.0  # seconds shared by the pieces of a split region
    prompt_chars: int = 224  # how much of the previous window's text goes into the prompt
    early_end_guard: float = 2.0  # re-transcribe when this much speech is left untranscribed
    language: str | None = None  # None: detected per window


@dataclass(frozen=True)
class Window:
    """Pieces of the audio (absolute seconds) transcribed together as one stretch."""

    pieces: tuple[SpeechRegion, ...]

    @property
    def start(self) -> float:
        return self.pieces[0].start

    @property
    def end(self) -> float:
        return self.pieces[-1].end

    @property
    def speech(self) -> float:
        return sum(p.duration for p in self.pieces)

    def to_absolute(self, t: float) -> float:
        """Map a time in the concatenated window audio to a time in the video."""
        offset = 0.0
        for piece in self.pieces:
            if t <= offset + piece.duration:
                return piece.start + max(0.0, t - offset)
            offset += piece.duration
        return self.pieces[-1].end

    def after(self, t: float) -> "Window | None":
        """The part of the window after absolute time ``t``, or None."""
        rest = [SpeechRegion(max(p.start, t), p.end) for p in self.pieces if p.end > t]
        return Window(tuple(rest)) if rest else None


def plan_windows(regions: Sequence[SpeechRegion], max_window: float = 28.0, overlap: float = 1.0) -> list[Window]:
    """Group speech regions into windows of at most ``max_window`` seconds of speech."""
    if max_window <= overlap:
        raise ValueError("max_window must be longer than overlap")
    pieces: list[SpeechRegion] = []
    for r in regions:
        if r.duration <= max_window:
            pieces.append(r)
            continue
        start = r.start
        while start < r.end:
            end = min(start + max_window, r.end)
            pieces.append(SpeechRegion(start, end))
            if end >= r.end:
                break
            start = end - overlap
    windows: list[list[SpeechRegion]] = []
    for piece in pieces:
        current = windows[-1] if windows else None
        if current is not None and sum(p.duration for p in current) + piece.duration <= max_window \
                and piece.start >= current[-1].end:
            current.append(piece)
        else:
            windows.append([piece])
    return [Window(tuple(w)) for w in windows]


def _slice(audio: np.ndarray, window: Window, sr: int) -> np.ndarray:
    parts = [audio[int(p.start * sr): int(p.end * sr)] for p in window.pieces]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _dedupe_overlaps(segments: list[SpeechSegment]) -> list[SpeechSegment]:
    """Drop segments that repeat speech already covered by an earlier window's overlap."""
    out: list[SpeechSegment] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        if out:
            prev = out[-1]
            overlap = min(prev.end, seg.end) - max(prev.start, seg.start)
            shorter = min(prev.end - prev.start, seg.end - seg.start)
            if shorter > 0 and overlap / shorter > 0.5:
                if len(seg.text) > len(prev.text):
                    out[-1] = seg
                continue
        out.append(seg)
    return out


def transcribe_speech(
    audio: np.ndarray,
    vad: VoiceDetector,
    transcriber: Transcriber,
    opts: SpeechOptions = SpeechOptions(),
    sample_rate: int = 16000,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[SpeechSegment]:
    """Transcribe the speech in ``audio``; returns segments with absolute times."""
    if audio.size == 0:
        return []
    regions = vad.speech_regions(audio, sample_rate)
    windows = plan_windows(regions, opts.max_window, opts.overlap)
    segments: list[SpeechSegment] = []
    prompt: str | None = None
    for i, window in enumerate(windows):
        todo: Window | None = window
        retried = False
        while todo is not None:
            result = transcriber.transcribe(_slice(audio, todo, sample_rate), prompt=prompt, language=opts.language)
            got = [
                SpeechSegment(todo.to_absolute(s.start), todo.to_absolute(s.end), s.text, result.language)
                for s in result.segments
            ]
            segments.extend(got)
            if result.text:
                prompt = result.text[-opts.prompt_chars:]
            reached = got[-1].end if got else todo.start
            rest = todo.after(reached)
            if retried or rest is None or rest.speech < opts.early_end_guard or not got:
                break
            log.debug("Whisper stopped at %.1f s with %.1f s of speech left; continuing", reached, rest.speech)
            todo, retried = rest, True
        if on_progress is not None:
            on_progress(i + 1, len(windows))
    return _dedupe_overlaps(segments)


def group_moments(segments: Sequence[SpeechSegment], max_seconds: float = 10.0, max_gap: float = 2.0) -> list[Moment]:
    """Join consecutive segments into speech moments of at most ``max_seconds``.

    A moment never spans a pause longer than ``max_gap`` seconds, so the times it cites
    are the times of its words.
    """
    moments: list[Moment] = []
    current: list[SpeechSegment] = []

    def flush() -> None:
        if current:
            lang = Counter(s.language for s in current).most_common(1)[0][0]
            moments.append(Moment(current[0].start, current[-1].end, "speech",
                                  " ".join(s.text.strip() for s in current), lang))
            current.clear()

    for seg in segments:
        if current and (seg.start - current[-1].end > max_gap or seg.end - current[0].start > max_seconds):
            flush()
        current.append(seg)
    flush()
    return moments


def main_language(segments: Sequence[SpeechSegment]) -> str | None:
    """The language spoken longest, or None without speech."""
    spoken: Counter[str] = Counter()
    for s in segments:
        if s.language:
            spoken[s.language] += s.end - s.start
    return spoken.most_common(1)[0][0] if spoken else None
