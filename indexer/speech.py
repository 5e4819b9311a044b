"""Speech to timed text: Silero VAD regions, grouped into windows, transcribed by Whisper.

Windowing (DESIGN.md section 1.4):

* VAD finds the speech and splits regions longer than a window at a pause. Consecutive
  regions are grouped into windows of at most ``max_window`` seconds of speech; silence
  between the regions of a window is cut out (as faster-whisper's own VAD filter does)
  and segment times are mapped back.
* A region with no pause to split at is cut into pieces that overlap by ``overlap``
  seconds. Those windows are transcribed with word timestamps, and each word of an
  overlap is kept once: on the side of the overlap's centre where its own centre lies.
* Each window is transcribed with the previous window's text as its prompt (not across a
  change of language: an English prompt pulls German speech towards English).
* The language is detected per window, on the window's speech only (after VAD, so
  silence cannot sway it), and a window never mixes languages: see :func:`assign_languages`.
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

__all__ = ["SpeechOptions", "Window", "LanguageGuess", "plan_windows", "overlap_cuts", "assign_languages",
           "resolve_languages", "transcribe_speech", "group_moments", "main_language"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechOptions:
    max_window: float = 28.0  # seconds of speech per Whisper call (Whisper sees 30 s at a time)
    overlap: float = 1.0  # seconds shared by the pieces of a split region
    prompt_chars: int = 224  # how much of the previous window's text goes into the prompt
    early_end_guard: float = 2.0  # re-transcribe when this much speech is left untranscribed
    language: str | None = None  # None: detected per window
    min_language_probability: float = 0.5  # below it a detection is not trusted (see resolve_languages)
    min_language_seconds: float = 2.0  # nor is one made on less speech than this
    max_language_pieces: int = 6  # at most this many pieces of a window are detected one by one


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


def _slice(audio: np.ndarray, window: Window, sr: int) -> np.ndarray:
    parts = [audio[int(p.start * sr): int(p.end * sr)] for p in window.pieces]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@dataclass(frozen=True)
class LanguageGuess:
    """What the model detected for a stretch of speech."""

    language: str
    probability: float
    speech: float  # seconds of speech it was detected on


def resolve_languages(guesses: Sequence[LanguageGuess], min_probability: float = 0.5,
                      min_seconds: float = 2.0) -> list[str | None]:
    """The language of each stretch of speech, in order, from the model's guesses.

    A guess is sure, and kept, when its probability is at least ``min_probability`` and it
    was made on at least ``min_seconds`` of speech. Whisper errs mostly on short stretches
    (a word or two) and on noise, and not always with a low probability: with Whisper base,
    French "Est-ce que vous allez bien ?" alone (1.7 s) is fr 0.26 against es 0.25, and the
    English word "publish" alone (0.7 s) is pl 0.74. So an unsure guess is replaced by what
    surrounds it:

    * the language of the nearest sure stretches before and after it when they agree (or
      when there is sure speech on one side only): languages change rarely, and a stretch
      between two of one language is almost always in it;
    * at a change of language (the sides disagree), its own guess when it is one of the two,
      else the video's main language (most seconds of sure speech) when it is one of them,
      else the earlier side;
    * when nothing in the video is sure, every stretch takes the language with the most
      seconds × probability over all guesses, rather than each keeping its own coin toss
      (None when there is no guess at all: the transcriber then detects it itself).

    The nearest neighbours, not the video's main language alone, decide because a video
    may switch language: an unsure stretch in the German half of a mostly English video is
    German.
    """
    def is_sure(g: LanguageGuess) -> bool:
        return bool(g.language) and g.probability >= min_probability and g.speech >= min_seconds

    sure = [i for i, g in enumerate(guesses) if is_sure(g)]
    if not sure:
        votes: Counter[str] = Counter()
        for g in guesses:
            if g.language:
                votes[g.language] += g.speech * g.probability
        return [votes.most_common(1)[0][0] if votes else None] * len(guesses)
    seconds: Counter[str] = Counter()
    for i in sure:
        seconds[guesses[i].language] += guesses[i].speech
    main = seconds.most_common(1)[0][0]
    out: list[str | None] = []
    for i, g in enumerate(guesses):
        if is_sure(g):
            out.append(g.language)
            continue
        before = next((guesses[j].language for j in reversed(sure) if j < i), None)
        after = next((guesses[j].language for j in sure if j > i), None)
        sides = [lang for lang in (before, after) if lang is not None]
        if len(set(sides)) == 1:
            out.append(sides[0])
        elif g.language in sides:
            out.append(g.language)
        elif main in sides:
            out.append(main)
        else:
            out.append(sides[0])
    return out


def assign_languages(audio: np.ndarray, windows: Sequence[Window], transcriber: Transcriber,
                     opts: SpeechOptions = SpeechOptions(),
                     sample_rate: int = 16000) -> list[tuple[Window, str | None]]:
    """Each window with its language; windows that hold a change of language are split there.

    With ``opts.language`` set, every window has it and nothing is detected. Otherwise the
    language of each window is detected on its speech (the VAD regions joined, without the
    silence between them: Whisper judges the first 30 s it is given, and in a video that
    opens with silence or music those hold no speech) and unsure guesses are settled by
    :func:`resolve_languages`. A window is grouped by speech seconds, so where the language
    changes one window can hold the end of one language and the start of the next (English
    25.7-29.3 s and German 30.8-41.6 s of the en-de recording came out as one window, de
    0.86, and Whisper told to write German translates the English). So the windows on either
    side of each change have their VAD pieces detected one by one, and are cut wherever the
    pieces' languages differ. So have unsure windows: speech joined from several short
    pieces can confuse Whisper where each piece alone does not (the French recording laid
    over a video, Whisper base: its four pieces joined ru 0.19, alone fr 0.63, fr 0.79, pt
    0.35, fr 0.72).
    Each such detection costs one encoder pass (as much as 30 s of audio, whatever the
    piece's length), which is why sure windows far from a change are not split up, and
    only the ``max_language_pieces`` longest pieces of a window are detected: the others
    take the language around them. For a sure window with the same language on both sides
    that is all there is: a short stretch of another language inside it is transcribed in
    the window's language (as is a change of language in a video whose speech fits one
    sure window). English-only models answer "en" at no cost, so nothing changes for them.
    """
    if opts.language:
        return [(w, opts.language) for w in windows]

    def guess(w: Window) -> LanguageGuess:
        speech = _slice(audio, w, sample_rate)
        if speech.size < sample_rate // 10:  # too short to tell: the speech around it decides
            return LanguageGuess("", 0.0, w.speech)
        language, probability = transcriber.detect_language(speech)
        return LanguageGuess(language, probability, w.speech)

    first = [guess(w) for w in windows]
    languages = resolve_languages(first, opts.min_language_probability, opts.min_language_seconds)
    units: list[list[tuple[Window, LanguageGuess]]] = []
    for i, (w, g) in enumerate(zip(windows, first)):
        near_change = (i > 0 and languages[i - 1] != languages[i]) or \
            (i + 1 < len(windows) and languages[i + 1] != languages[i])
        if len(w.pieces) > 1 and (near_change or g.probability < opts.min_language_probability):
            by_length = sorted(range(len(w.pieces)), key=lambda j: -w.pieces[j].duration)
            detect = set(by_length[: opts.max_language_pieces])
            units.append([(Window((p,)), guess(Window((p,))) if j in detect else LanguageGuess(g.language, 0.0,
                                                                                                p.duration))
                          for j, p in enumerate(w.pieces)])
        else:
            units.append([(w, g)])
    flat = resolve_languages([g for group in units for _, g in group], opts.min_language_probability,
                             opts.min_language_seconds)
    out: list[tuple[Window, str | None]] = []
    k = 0
    for group in units:
        pieces: list[SpeechRegion] = []
        current = None
        for unit, _ in group:
            language = flat[k]
            k += 1
            if pieces and language != current:
                out.append((Window(tuple(pieces)), current))
                pieces = []
            pieces += unit.pieces
            current = language
        out.append((Window(tuple(pieces)), current))
    for w, language in out:
        log.debug("speech %.1f-%.1f s: %s", w.start, w.end, language)
    return out


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
    start, end = window.span_to_absolute(seg.start, seg.end)
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
    planned = assign_languages(audio, plan_windows(regions, opts.max_window, opts.overlap), transcriber, opts,
                               sample_rate)
    windows = [w for w, _ in planned]
    segments: list[SpeechSegment] = []
    prompt: str | None = None
    previous_language: str | None = None
    for (window, language), (lo, hi) in zip(planned, overlap_cuts(windows)):
        if language != previous_language:
            prompt = None
        previous_language = language
        todo: Window | None = window
        retried = False
        while todo is not None:
            result = transcriber.transcribe(_slice(audio, todo, sample_rate), prompt=prompt, language=language,
                                            word_timestamps=math.isfinite(lo) or math.isfinite(hi))
            for seg in result.segments:
                owned = _owned(seg, todo, lo, hi, result.language or language)
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
    are the times of its words, nor a change of language, so its language is the one spoken.
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
        if current and (seg.start - current[-1].end > max_gap or seg.end - current[0].start > max_seconds
                        or seg.language != current[-1].language):
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
