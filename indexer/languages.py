"""Which language each stretch of speech is in, and a guard on what Whisper writes in it.

* The language is detected per window, on the window's speech only (after VAD, so silence
  cannot sway it); unsure guesses take the language of the speech around them, and a window
  never mixes languages (:func:`assign_languages`, :func:`resolve_languages`).
  ``SpeechOptions.languages`` restricts the languages detection may choose.
* Detection alone is not enough: on short, dense or low-quality English (the LRS2 clips),
  Whisper base says Welsh with a probability of 0.69 to 0.92, and then writes Welsh-sounding
  loops ("Mae'n gweithio'r gweithio'n ..."). So each transcript is checked with Whisper's own
  signals (:func:`suspect`); a suspect one is transcribed again in the next likely language
  and in the file's main language, and the reading with the best mean log-probability is
  kept (:func:`transcribe_checked`). The choice is logged and stored as the segments' language.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from indexer.windows import DEFAULT_SPEECH, SpeechOptions, Window, slice_audio
from models.types import SpeechRegion, Transcriber, Transcript

__all__ = ["LanguageGuess", "guess_language", "is_sure", "sure_guess", "confident", "resolve_languages",
           "assign_languages", "suspect", "transcribe_checked", "mean_logprob", "compression_ratio"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LanguageGuess:
    """What the model detected for a stretch of speech."""

    language: str
    probability: float
    speech: float  # seconds of speech it was detected on
    runner_up: float | None = None  # the next candidate's probability (None: not known)


def is_sure(guess: LanguageGuess, min_probability: float = 0.5, min_seconds: float = 2.0,
            min_margin: float = 2.0) -> bool:
    """A guess made on at least ``min_seconds`` of speech with at least ``min_probability``, or with
    at least half that and ``min_margin`` times the next candidate's probability.

    The margin: Whisper spreads its probability over languages that sound alike, so a right
    guess can stay under ``min_probability`` and still stand well clear of the rest, where a
    coin toss does not. Measured with Whisper base (docs/EVALUATION.md): the narrated
    `solar_system.mp4` is en 0.44 against fi 0.20 (2.2x; each of its sentences alone is English
    too), where speech Whisper cannot place is 1.0-1.1x (the French recording's four pieces
    joined: ru 0.15 against pl 0.14; "Est-ce que vous allez bien ?" alone: fr 0.26 against es 0.25).
    """
    return bool(guess.language) and guess.speech >= min_seconds and confident(guess, min_probability, min_margin)


def sure_guess(guess: LanguageGuess, opts: SpeechOptions = DEFAULT_SPEECH) -> bool:
    """:func:`is_sure` with the thresholds of ``opts``."""
    return is_sure(guess, opts.min_language_probability, opts.min_language_seconds, opts.min_language_margin)


def confident(guess: LanguageGuess, min_probability: float = 0.5, min_margin: float = 2.0) -> bool:
    """:func:`is_sure` without the length of speech: probable enough, or far enough ahead of the next
    candidate (and not a guess among many: 0.10 against 0.04 is noise)."""
    return guess.probability >= min_probability or (
        guess.runner_up is not None and guess.probability >= min_probability / 2
        and guess.probability >= min_margin * guess.runner_up)


def guess_language(audio: np.ndarray, window: Window, transcriber: Transcriber, opts: SpeechOptions = DEFAULT_SPEECH,
                   sample_rate: int = 16000) -> tuple[LanguageGuess, list[tuple[str, float]]]:
    """The language detected on a window's speech, and every candidate's probability (best first).

    Speech too short to tell (under 0.1 s) gets an empty guess: the speech around it decides.
    """
    speech = slice_audio(audio, window, sample_rate)
    if speech.size < sample_rate // 10:
        return LanguageGuess("", 0.0, window.speech), []
    ranked = (transcriber.language_probabilities(speech, languages=opts.languages) if opts.languages
              else transcriber.language_probabilities(speech))
    return LanguageGuess(ranked[0][0], ranked[0][1], window.speech, ranked[1][1] if len(ranked) > 1 else None), ranked


def resolve_languages(guesses: Sequence[LanguageGuess], min_probability: float = 0.5,
                      min_seconds: float = 2.0, min_margin: float = 2.0) -> list[str | None]:
    """The language of each stretch of speech, in order, from the model's guesses.

    A guess is sure, and kept, when it was made on at least ``min_seconds`` of speech with a
    probability of at least ``min_probability`` or ``min_margin`` times the next candidate's
    (:func:`is_sure`). Whisper errs mostly on short stretches
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
    sure = [i for i, g in enumerate(guesses) if is_sure(g, min_probability, min_seconds, min_margin)]
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
        if is_sure(g, min_probability, min_seconds, min_margin):
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
                     opts: SpeechOptions = DEFAULT_SPEECH, sample_rate: int = 16000,
                     first: Sequence[LanguageGuess] | None = None) -> list[list[tuple[Window, str | None]]]:
    """For each window, its parts and their languages: a window that holds a change of language is split there.

    ``first``: the windows' guesses when already detected (:func:`guess_language`).

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
        return [[(w, opts.language)] for w in windows]

    def guess(w: Window) -> LanguageGuess:
        return guess_language(audio, w, transcriber, opts, sample_rate)[0]

    if first is None:
        first = [guess(w) for w in windows]
    languages = resolve_languages(first, opts.min_language_probability, opts.min_language_seconds,
                                  opts.min_language_margin)
    units: list[list[tuple[Window, LanguageGuess]]] = []
    for i, (w, g) in enumerate(zip(windows, first)):
        near_change = (i > 0 and languages[i - 1] != languages[i]) or \
            (i + 1 < len(windows) and languages[i + 1] != languages[i])
        if len(w.pieces) > 1 and (near_change or not confident(g, opts.min_language_probability,
                                                               opts.min_language_margin)):
            by_length = sorted(range(len(w.pieces)), key=lambda j: -w.pieces[j].duration)
            detect = set(by_length[: opts.max_language_pieces])
            units.append([(Window((p,)), guess(Window((p,))) if j in detect else LanguageGuess(g.language, 0.0,
                                                                                                p.duration))
                          for j, p in enumerate(w.pieces)])
        else:
            units.append([(w, g)])
    flat = resolve_languages([g for group in units for _, g in group], opts.min_language_probability,
                             opts.min_language_seconds, opts.min_language_margin)
    out: list[list[tuple[Window, str | None]]] = []
    k = 0
    for group in units:
        parts: list[tuple[Window, str | None]] = []
        pieces: list[SpeechRegion] = []
        current = None
        for unit, _ in group:
            language = flat[k]
            k += 1
            if pieces and language != current:
                parts.append((Window(tuple(pieces)), current))
                pieces = []
            pieces += unit.pieces
            current = language
        parts.append((Window(tuple(pieces)), current))
        out.append(parts)
        for w, language in parts:
            log.debug("speech %.1f-%.1f s: %s", w.start, w.end, language)
    return out


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression, as Whisper computes it (high: repetitive)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def mean_logprob(transcript: Transcript) -> float:
    """The mean token log-probability of a transcript, each segment weighted by its length."""
    total = sum(max(s.end - s.start, 0.01) for s in transcript.segments)
    if not total:
        return 0.0
    return sum(s.avg_logprob * max(s.end - s.start, 0.01) for s in transcript.segments) / total


def suspect(transcript: Transcript, opts: SpeechOptions = DEFAULT_SPEECH) -> str | None:
    """Why a transcript looks like Whisper writing in the wrong language or looping, or None.

    Whisper's own signals: a compression ratio above 2.4 (its temperature-fallback rule: the
    text repeats itself) or a low mean log-probability. (A share of repeated words was tried
    too and dropped: it marks real speech that says a sentence twice.) Measured on the LRS2 clips with Whisper
    base: read as Welsh, mean log-probability -0.81 and -0.86 (compression 2.46 and 2.02);
    read as English, -0.52 and -0.32. Correct readings of the other shared recordings lie
    between -0.20 and -0.48. A reading by the English reader (Moonshine base, models.whisper_ct2)
    carries Moonshine's own mean log-probability, which is at least -0.25 (it gives lower ones
    back to Whisper), so only the compression ratio can mark it suspect.
    """
    if not transcript.segments:
        return None
    text = transcript.text
    ratio = compression_ratio(text)
    if ratio > opts.suspect_compression:
        return f"compression ratio {ratio:.2f}"
    logprob = mean_logprob(transcript)
    if logprob < opts.suspect_logprob:
        return f"mean log-probability {logprob:.2f}"
    return None


def transcribe_checked(transcriber: Transcriber, audio: np.ndarray, language: str | None, *,
                       prompt: str | None, word_timestamps: bool, opts: SpeechOptions = DEFAULT_SPEECH,
                       fallback: str | None = None, where: str = "",
                       ranked: Sequence[tuple[str, float]] | None = None) -> tuple[Transcript, str | None]:
    """Transcribe ``audio`` in ``language``; a :func:`suspect` transcript is read again in other languages.

    The other languages are the next most likely one for this audio and ``fallback`` (the
    file's main language). A language given by the user (``opts.language``) is never
    second-guessed, and English-only models have nothing else to try. ``ranked``: the
    languages already detected on this audio, best first (else detected when needed).
    Returns the transcript kept and its language.
    """
    result = transcriber.transcribe(audio, prompt=prompt, language=language, word_timestamps=word_timestamps)
    if opts.language or language is None:
        return result, language
    reason = suspect(result, opts)
    if reason is None:
        return result, language
    if not ranked:
        ranked = transcriber.language_probabilities(audio, opts.languages)
    others = [lang for lang, _ in ranked if lang != language][:1] + [fallback]
    tried: list[str] = []
    best, best_language, best_reason = result, language, reason
    for other in others:
        if not other or other == language or other in tried or (opts.languages and other not in opts.languages):
            continue
        tried.append(other)
        alt = transcriber.transcribe(audio, prompt=None, language=other, word_timestamps=word_timestamps)
        alt_reason = suspect(alt, opts)
        # a reading that is not suspect beats one that is; between equals, the more probable wins
        if alt.segments and ((alt_reason is None) > (best_reason is None) or (
                (alt_reason is None) == (best_reason is None) and mean_logprob(alt) > mean_logprob(best))):
            best, best_language, best_reason = alt, other, alt_reason
    if tried:
        log.info("%sspeech read as %s was suspect (%s); tried %s; kept %s (mean log-probability %.2f)",
                 f"{where}: " if where else "", language, reason, ", ".join(tried), best_language,
                 mean_logprob(best))
    return best, best_language
