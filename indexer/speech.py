"""Speech to timed sentences: Silero VAD regions, grouped into windows, transcribed by Whisper.

* VAD finds the speech; :mod:`indexer.windows` groups it into windows of at most
  ``max_window`` seconds of speech with the silences cut out, and maps times back.
* :mod:`indexer.languages` gives each window its language and checks what Whisper writes.
* Each window is transcribed with the previous window's text as its prompt (not across a
  change of language: an English prompt pulls German speech towards English). Words in the
  overlap of two pieces of a long region are kept once, on the side of the overlap's centre
  where they lie.
* Guard against ending early: when Whisper stops well before the end of the speech in a
  window (music or noise can make it emit end-of-text, and so can a change of language), the
  rest is transcribed on its own, in its own language when that is detected sure and another.
* Each sentence the transcriber writes (a Whisper segment, or a sentence of Moonshine's text
  timed by Whisper: models.whisper_ct2's ``english_reader``) becomes one searchable moment with
  its own times (:func:`sentence_moments`), so a citation points at the sentence that holds the
  answer; the sentences around it are context, not part of the cited span. A sentence with word
  times that is longer than ``SpeechOptions.longest_sentence`` is cut where the speaker pauses
  (:mod:`indexer.sentences`): Moonshine's always have word times; Whisper's have them only in
  a window that shares an overlap with the next, so elsewhere its segments stay as it cut them.

Every segment keeps absolute start and end times in the video.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from indexer.languages import LanguageGuess, assign_languages, guess_language, sure_guess, transcribe_checked
from indexer.schema import Moment, SpeechSegment
from indexer.sentences import cut_long, pauses
from indexer.windows import DEFAULT_SPEECH, SpeechOptions, Window, overlap_cuts, plan_windows, slice_audio
from models.types import Transcriber, Transcript, TranscriptSegment, VoiceDetector, Word

__all__ = ["transcribe_speech", "sentence_moments", "main_language"]

log = logging.getLogger(__name__)


def _owned(seg: TranscriptSegment, window: Window, lo: float, hi: float, language: str | None,
           runs: Sequence[tuple[float, float]], longest: float) -> list[SpeechSegment]:
    """The part of a segment (absolute times) whose words lie in ``[lo, hi)``, as sentences of at most
    ``longest`` seconds where its words have times (:func:`indexer.sentences.cut_long`)."""
    start, end = window.span_to_absolute(seg.start, seg.end)
    if not seg.words:  # no word times: the segment goes where its centre is
        return [SpeechSegment(start, end, seg.text, language)] if lo <= (start + end) / 2 < hi else []
    pairs = [(w, Word(window.to_absolute(w.start), window.to_absolute(w.end), w.text)) for w in seg.words]
    pairs = [(w, a) for w, a in pairs if lo <= (a.start + a.end) / 2 < hi]
    parts = cut_long([a for _, a in pairs], runs, longest)
    if len(parts) == 1 and len(pairs) == len(seg.words):  # whole: the segment's own times and text
        return [SpeechSegment(start, end, seg.text, language)]
    out, i = [], 0
    for part in parts:
        if part:  # times from the window's words, so that a part never starts or ends in a silence VAD cut out
            own = [w for w, _ in pairs[i:i + len(part)]]
            out.append(SpeechSegment(*window.span_to_absolute(own[0].start, own[-1].end),
                                     "".join(w.text for w in own).strip(), language))
        i += len(part)
    return out


def _owned_segments(result: Transcript, window: Window, lo: float, hi: float, language: str | None,
                    runs: Sequence[tuple[float, float]] = (), longest: float = math.inf) -> list[SpeechSegment]:
    """The parts of a window's transcript that lie in ``[lo, hi)`` (:func:`_owned`), in absolute times."""
    return [part for seg in result.segments
            for part in _owned(seg, window, lo, hi, language or result.language, runs, longest)]


def _transcribe_window(audio: np.ndarray, window: Window, language: str | None, cut: tuple[float, float],
                       transcriber: Transcriber, opts: SpeechOptions, sample_rate: int, prompt: str | None,
                       fallback: str | None, where: str,
                       ranked: Sequence[tuple[str, float]] | None = None,
                       ) -> tuple[list[SpeechSegment], str | None, str | None]:
    """One window's sentences (the part of ``cut`` it owns), the prompt it leaves for the next window
    (the end of its text, None without text) and the language it was read in."""
    lo, hi = cut
    segments: list[SpeechSegment] = []
    text = ""
    if not getattr(transcriber, "timestamps", True):
        # A transcriber that writes one text per call, without times inside it (Moonshine): each
        # VAD piece is read on its own and is one timed moment (a pause ends a sentence or a clause).
        for piece in window.pieces:
            part = Window((piece,))
            result, language = transcribe_checked(
                transcriber, slice_audio(audio, part, sample_rate), language, prompt=None, word_timestamps=False,
                opts=opts, fallback=fallback, where=f"{where} {part.start:.1f}-{part.end:.1f} s".strip())
            segments += _owned_segments(result, part, lo, hi, language)
            text = f"{text} {result.text}".strip()
        return segments, text[-opts.prompt_chars:] or None, language
    todo: Window | None = window
    retried = False
    runs = pauses(audio, window, sample_rate)
    while todo is not None:
        result, language = transcribe_checked(
            transcriber, slice_audio(audio, todo, sample_rate), language, prompt=prompt,
            word_timestamps=math.isfinite(lo) or math.isfinite(hi), opts=opts, fallback=fallback,
            where=f"{where} {todo.start:.1f}-{todo.end:.1f} s".strip(), ranked=ranked)
        segments += _owned_segments(result, todo, lo, hi, language, runs, opts.longest_sentence)
        if result.text:
            text = f"{text} {result.text}".strip()
            prompt = result.text[-opts.prompt_chars:]
        if not result.segments or retried:
            break
        reached = todo.to_absolute(result.segments[-1].end)
        rest = todo.after(reached)
        if rest is None or rest.speech < opts.early_end_guard:
            break
        # Music or noise can make Whisper emit end-of-text with speech still to come, and so can a
        # change of language inside the window: it stops where the other language begins. So the
        # rest's language is detected first (the transcription reuses that encoding: no extra
        # encoder pass), and a sure guess of another language is read in it, without the prompt.
        log.debug("Whisper stopped at %.1f s with %.1f s of speech left; continuing", reached, rest.speech)
        todo, retried = rest, True
        if not opts.language:
            guess, ranked = guess_language(audio, rest, transcriber, opts, sample_rate)
            if guess.language != language and sure_guess(guess, opts):
                log.debug("speech %.1f-%.1f s: %s after %s", rest.start, rest.end, guess.language, language)
                language, prompt = guess.language, None
    return segments, text[-opts.prompt_chars:] or None, language


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

    Two passes, so that most windows cost one encoder pass of Whisper, not two (one to
    detect the language, one to transcribe; the transcriber reuses the encoding of a
    detection for a transcription of the same audio):

    1. In order, each window's language is detected and, when the guess is sure and the
       same as the window before's guess (or it is the first), the window is transcribed at
       once, from the detection's encoding.
    2. With every guess known, :func:`assign_languages` settles the languages of the file
       (unsure guesses take the speech around them; windows at a change of language are
       split there). A window transcribed in pass 1 whose plan is still itself in the same
       language is kept; the rest are transcribed now, part by part.
    """
    if audio.size == 0:
        return []
    regions = vad.speech_regions(audio, sample_rate, max_speech=opts.max_window)
    windows = plan_windows(regions, opts.max_window, opts.overlap)
    cuts = overlap_cuts(windows)
    guesses: list[LanguageGuess] = []
    # window -> pass-1 result; such a window was read in its guess's language (before the guard)
    done: dict[int, tuple[list[SpeechSegment], str | None, str | None]] = {}
    prompt, previous = None, None  # the prompt and language the window read last in pass 1 leaves
    for i, window in enumerate(windows):
        if opts.language:
            guess, ranked = LanguageGuess(opts.language, 1.0, window.speech), None
        else:
            guess, ranked = guess_language(audio, window, transcriber, opts, sample_rate)
        guesses.append(guess)
        sure = sure_guess(guess, opts)
        if not sure or (i > 0 and guess.language != guesses[i - 1].language):
            continue  # unsure, or a change of language: pass 2 decides, with the whole file known
        fallback = _longest((guesses[j].language, windows[j].speech) for j in done)  # the file's so far
        done[i] = _transcribe_window(audio, window, guess.language, cuts[i], transcriber, opts, sample_rate,
                                     prompt if previous == guess.language and i - 1 in done else None, fallback,
                                     where, ranked)
        prompt, previous = done[i][1], done[i][2] or guess.language  # the language its text ends in
    plans = assign_languages(audio, windows, transcriber, opts, sample_rate, first=guesses)
    file_language = _longest((language, w.speech) for parts in plans for w, language in parts)
    segments: list[SpeechSegment] = []
    prompt, previous = None, None
    for i, parts in enumerate(plans):
        if i in done and len(parts) == 1 and parts[0][1] == guesses[i].language:
            found, prompt, previous = done[i]
            segments += found
            continue
        for window, language in parts:
            found, prompt, previous = _transcribe_window(audio, window, language, cuts[i], transcriber, opts,
                                                         sample_rate, prompt if language == previous else None,
                                                         file_language, where)
            segments += found
    return segments


def sentence_moments(segments: Sequence[SpeechSegment]) -> list[Moment]:
    """One speech moment per segment (Whisper's sentences), with the segment's own times.

    Whisper sometimes writes one sentence as two segments and, on fast speech, two short
    sentences as one; both are kept as they are: the retriever shows the sentences around
    a moment as its context.
    """
    return [Moment(s.start, s.end, "speech", s.text.strip(), s.language) for s in segments if s.text.strip()]


def _longest(spoken: Iterable[tuple[str | None, float]]) -> str | None:
    """The language with the most seconds among (language, seconds) pairs; None when none has a language."""
    seconds: Counter[str] = Counter()
    for language, duration in spoken:
        if language:
            seconds[language] += duration
    return seconds.most_common(1)[0][0] if seconds else None


def main_language(segments: Sequence[SpeechSegment]) -> str | None:
    """The language spoken longest, or None without speech."""
    return _longest((s.language, s.end - s.start) for s in segments)
