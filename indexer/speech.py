"""Speech to timed text: Silero VAD regions, grouped into windows, transcribed by Whisper.

Windowing (DESIGN.md section 1.4):

* VAD finds the speech and splits regions longer than a window at a pause. Consecutive
  regions are grouped into windows of at most ``max_window`` seconds of speech; silence
  between the regions of a window is cut out (as faster-whisper's own VAD filter does)
  and segment times are mapped back.
* A region with no pause to split at is cut into pieces that overlap by ``overlap``
  seconds. Those windows are transcribed with word timestamps, and each word of an
  overlap is kept once: on the side of the overlap's centre where its own centre lies.
* Each window is transcribed with the previous window's text as its prompt.
* Guard against ending early: when Whisper stops well before the end of the speech in
  a window (music or noise can make it emit end-of-text), the rest of that window is
  transcribed again on its own.

Every segment keeps absolute start and end times in the video.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from indexer.schema import Moment, SpeechSegment
from models.types import SpeechRegion, Transcriber, TranscriptSegment, VoiceDetector

__all__ = ["SpeechOptions", "Window", "plan_windows", "overlap_cuts", "transcribe_speech", "group_moments",
           "main_language"]

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


def overlap_cuts(windows: Sequence[Window]) -> list[tuple[float, float]]:
    """For each window, the span ``[lo, hi)`` of video time it owns.

    Where two windows overlap, the centre of the overlap divides them; elsewhere a
    window owns everything.
    """
    cuts = [(a.end + b.start) / 2 if b.start < a.end else None for a, b in zip(windows, windows[1:])]
    lows = [-math.inf] + [c if c is not None else -math.inf for c in cuts]
    highs = [c if c is not None else math.inf for c in cuts] + [math.inf]
    return list(zip(lows, highs))


def _owned(seg: TranscriptSegment, window: Window, lo: float, hi: float, language: str | None) -> SpeechSegment | None:
    """The part of a segment (absolute times) whose words lie in ``[lo, hi)``; None if nothing is left."""
    start, end = window.to_absolute(seg.start), window.to_absolute(seg.end)
    if lo == -math.inf and hi == math.inf:
        return SpeechSegment(start, end, seg.text, language)
    if not seg.words:  # no word times: the segment goes where its centre is
        return SpeechSegment(start, end, seg.text, language) if lo <= (start + end) / 2 < hi else None
    kept = [(window.to_absolute(w.start), window.to_absolute(w.end), w.text) for w in seg.words]
    kept = [w for w in kept if lo <= (w[0] + w[1]) / 2 < hi]
    if not kept:
        return None
    return SpeechSegment(kept[0][0], kept[-1][1], "".join(w[2] for w in kept).strip(), language)


def transcribe_speech(
    audio: np.ndarray,
    vad: VoiceDetector,
    transcriber: Transcriber,
    opts: SpeechOptions = SpeechOptions(),
    sample_rate: int = 16000,
) -> list[SpeechSegment]:
    """Transcribe the speech in ``audio``; returns segments with absolute times."""
    if audio.size == 0:
        return []
    regions = vad.speech_regions(audio, sample_rate, max_speech=opts.max_window)
    windows = plan_windows(regions, opts.max_window, opts.overlap)
    segments: list[SpeechSegment] = []
    prompt: str | None = None
    for window, (lo, hi) in zip(windows, overlap_cuts(windows)):
        todo: Window | None = window
        retried = False
        while todo is not None:
            result = transcriber.transcribe(_slice(audio, todo, sample_rate), prompt=prompt, language=opts.language,
                                            word_timestamps=math.isfinite(lo) or math.isfinite(hi))
            for seg in result.segments:
                owned = _owned(seg, todo, lo, hi, result.language)
                if owned is not None:
                    segments.append(owned)
            if result.text:
                prompt = result.text[-opts.prompt_chars:]
            if not result.segments or retried:
                break
            reached = todo.to_absolute(result.segments[-1].end)
            rest = todo.after(reached)
            if rest is None or rest.speech < opts.early_end_guard:
                break
            # Music or noise can make Whisper emit end-of-text with speech still to come.
            log.debug("Whisper stopped at %.1f s with %.1f s of speech left; continuing", reached, rest.speech)
            todo, retried = rest, True
    return segments


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
