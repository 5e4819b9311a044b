"""Speech to timed sentences: Silero VAD regions, grouped into windows, transcribed by Whisper.

* VAD finds the speech; :mod:`indexer.windows` groups it into windows of at most
  ``max_window`` seconds of speech with the silences cut out, and maps times back.
* :mod:`indexer.languages` gives each window its language and checks what Whisper writes.
* Each window is transcribed with the previous window's text as its prompt (not across a
  change of language: an English prompt pulls German speech towards English). Words in the
  overlap of two pieces of a long region are kept once, on the side of the overlap's centre
  where they lie.
* Guard against ending early: when Whisper stops well before the end of the speech in a
  window (music or noise can make it emit end-of-text), the rest is transcribed on its own.
* Each Whisper segment (a sentence, or a clause of a long one) becomes one searchable moment
  with its own times (:func:`sentence_moments`), so a citation points at the sentence that
  holds the answer; the sentences around it are context, not part of the cited span.

Every segment keeps absolute start and end times in the video.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Sequence

import numpy as np

from indexer.languages import assign_languages, transcribe_checked
from indexer.schema import Moment, SpeechSegment
from indexer.windows import DEFAULT_SPEECH, SpeechOptions, Window, overlap_cuts, plan_windows, slice_audio
from models.types import Transcriber, TranscriptSegment, VoiceDetector

__all__ = ["transcribe_speech", "sentence_moments", "main_language"]

log = logging.getLogger(__name__)


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
    opts: SpeechOptions = DEFAULT_SPEECH,
    sample_rate: int = 16000,
    where: str = "",
) -> list[SpeechSegment]:
    """Transcribe the speech in ``audio``; returns segments with absolute times.

    ``where`` (the file's name) prefixes the log messages about languages.
    """
    if audio.size == 0:
        return []
    regions = vad.speech_regions(audio, sample_rate, max_speech=opts.max_window)
    planned = assign_languages(audio, plan_windows(regions, opts.max_window, opts.overlap), transcriber, opts,
                               sample_rate)
    spoken: Counter[str] = Counter()
    for w, language in planned:
        if language:
            spoken[language] += w.speech
    file_language = spoken.most_common(1)[0][0] if spoken else None
    windows = [w for w, _ in planned]
    segments: list[SpeechSegment] = []
    prompt: str | None = None
    previous_language: str | None = None
    for (window, language), (lo, hi) in zip(planned, overlap_cuts(windows)):
        todo: Window | None = window
        retried = False
        while todo is not None:
            if language != previous_language:
                prompt = None
            result, language = transcribe_checked(
                transcriber, slice_audio(audio, todo, sample_rate), language, prompt=prompt,
                word_timestamps=math.isfinite(lo) or math.isfinite(hi), opts=opts, fallback=file_language,
                where=f"{where} {todo.start:.1f}-{todo.end:.1f} s".strip())
            previous_language = language
            for seg in result.segments:
                owned = _owned(seg, todo, lo, hi, language or result.language)
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


def sentence_moments(segments: Sequence[SpeechSegment]) -> list[Moment]:
    """One speech moment per segment (Whisper's sentences), with the segment's own times.

    Whisper sometimes writes one sentence as two segments and, on fast speech, two short
    sentences as one; both are kept as they are: the retriever shows the sentences around
    a moment as its context.
    """
    return [Moment(s.start, s.end, "speech", s.text.strip(), s.language) for s in segments if s.text.strip()]


def main_language(segments: Sequence[SpeechSegment]) -> str | None:
    """The language spoken longest, or None without speech."""
    spoken: Counter[str] = Counter()
    for s in segments:
        if s.language:
            spoken[s.language] += s.end - s.start
    return spoken.most_common(1)[0][0] if spoken else None
