"""Speech windows: the stretches of speech that Whisper transcribes in one call.

VAD regions are grouped into windows of at most ``max_window`` seconds of speech; the
silence between the regions of a window is cut out (as faster-whisper's own VAD filter
does) and segment times are mapped back to the video. A region with no pause to split at
is cut into pieces that overlap by ``overlap`` seconds; :func:`overlap_cuts` says which
window owns which part of an overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models.types import SpeechRegion

__all__ = ["SpeechOptions", "DEFAULT_SPEECH", "Window", "plan_windows", "overlap_cuts", "slice_audio"]


@dataclass(frozen=True)
class SpeechOptions:
    max_window: float = 28.0  # seconds of speech per Whisper call (Whisper sees 30 s at a time)
    overlap: float = 1.0  # seconds shared by the pieces of a split region
    prompt_chars: int = 224  # how much of the previous window's text goes into the prompt
    early_end_guard: float = 2.0  # re-transcribe when this much speech is left untranscribed
    language: str | None = None  # None: detected per window
    min_language_probability: float = 0.5  # below it a detection is not trusted (see resolve_languages)
    min_language_seconds: float = 2.0  # nor is one made on less speech than this
    min_language_margin: float = 2.0  # ... unless it is at least this many times as probable as the next (is_sure)
    max_language_pieces: int = 6  # at most this many pieces of a window are detected one by one
    languages: tuple[str, ...] | None = None  # the languages detection may choose from (None: any)
    # A transcript is suspect (and tried in other likely languages) when Whisper's own signals say so:
    suspect_compression: float = 2.4  # text that zlib compresses more than this is repetitive
    suspect_logprob: float = -0.6  # a mean token log-probability below this is a weak reading
    longest_sentence: float = 7.0  # a timed sentence longer than this is cut where the speaker pauses


DEFAULT_SPEECH = SpeechOptions()


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

    def span_to_absolute(self, start: float, end: float, snap: float = 0.3) -> tuple[float, float]:
        """Map a segment's start and end; a segment that only grazes a cut between pieces is kept off it.

        Whisper's segment times are coarse (its starts are often a little early), so a
        segment spoken after a cut can start a few hundredths of a second before it. Mapped
        as they are, its start would land at the end of the piece before the cut, and the
        segment would span the silence that was cut out (29 s in the French recording).
        Less than ``snap`` seconds on one side of a cut, with more on the other, is moved
        across it.
        """
        cuts, offset = [], 0.0
        for piece in self.pieces[:-1]:
            offset += piece.duration
            cuts.append(offset)
        for cut in cuts:
            if start < cut < end and cut - start < snap and end - cut > cut - start:
                start = math.nextafter(cut, math.inf)  # just after the cut: the next piece's start
        for cut in reversed(cuts):
            if start < cut < end and end - cut < snap and cut - start > end - cut:
                end = cut
        return self.to_absolute(start), self.to_absolute(end)

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


def slice_audio(audio: np.ndarray, window: Window, sr: int) -> np.ndarray:
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
