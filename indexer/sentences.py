"""Sentences short enough to cite: a long one is cut where the speaker pauses.

A moment is what a citation points at, so a 10-s stretch of speech is too coarse even when it
is one sentence, and not every reader punctuates every sentence (Moonshine writes "ask not what
your country can do for you ask what you can do for your country" as one). So a sentence longer
than ``SpeechOptions.longest_sentence`` is cut in two, again and again, where the speaker pauses
longest. The pauses come from the audio, not from the words' times: an alignment leaves no gap
between words (a pause goes into the word before or after it, and the edges are a few tenths of
a second off). They are the quiet stretches of the audio (:func:`quiet_runs`) and the silences
VAD cut out of the window between its pieces (:func:`pauses`); each goes to the word boundary
nearest to it (:func:`pause_before`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from indexer.windows import Window
from models.types import Word

__all__ = ["quiet_runs", "pauses", "pause_before", "cut_long"]

HOP = 0.01  # seconds per frame of :func:`quiet_runs`


def quiet_runs(audio: np.ndarray, sample_rate: int = 16000, join: float = 0.05,
               shortest: float = 0.1) -> list[tuple[float, float]]:
    """The quiet stretches of ``audio``, (start, end) in seconds from its start.

    Quiet: a 20-ms energy 20 dB under the loud part of the audio (its 95th percentile), on a
    10-ms hop. Stretches less than ``join`` apart are one; those under ``shortest`` (a stop
    consonant) are dropped.
    """
    hop = int(sample_rate * HOP)
    n = audio.size // hop
    if n == 0:
        return []
    energy = (audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)
    energy = (energy + np.concatenate([energy[1:], energy[-1:]])) / 2  # 20-ms windows
    quiet = energy < 0.01 * np.percentile(energy, 95)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs: list[tuple[float, float]] = []
    for a, b in zip(edges[::2] * HOP, edges[1::2] * HOP):
        if runs and a - runs[-1][1] < join:
            runs[-1] = (runs[-1][0], float(b))
        else:
            runs.append((float(a), float(b)))
    return [(a, b) for a, b in runs if b - a >= shortest]


def pauses(audio: np.ndarray, window: Window, sample_rate: int = 16000) -> list[tuple[float, float]]:
    """The pauses in a window's stretch of the file (absolute seconds): its quiet stretches and the
    silences between its VAD pieces (which may be loud: noise or music VAD found no speech in)."""
    a, b = int(window.start * sample_rate), int(window.end * sample_rate)
    runs = [(window.start + s, window.start + e) for s, e in quiet_runs(audio[a:b], sample_rate)]
    runs += [(p.end, q.start) for p, q in zip(window.pieces, window.pieces[1:]) if q.start > p.end]
    return sorted(runs)


def pause_before(words: Sequence[Word], runs: Sequence[tuple[float, float]], near: float = 0.3) -> dict[int, float]:
    """Word index -> seconds of pause before that word: each pause goes to the word boundary nearest
    to it (inside it counts as nearest), when one is within ``near`` seconds."""
    out: dict[int, float] = {}
    if len(words) < 2:
        return out
    for a, b in runs:
        i = min(range(1, len(words)), key=lambda i: max(a - words[i].start, words[i].start - b, 0.0))
        if a - near <= words[i].start <= b + near:
            out[i] = max(out.get(i, 0.0), b - a)
    return out


def cut_long(words: Sequence[Word], runs: Sequence[tuple[float, float]], longest: float) -> list[list[Word]]:
    """``words`` cut in two, again and again, until no part is longer than ``longest`` seconds.

    The cut is where the speaker pauses longest (a comma, semicolon or colon adds 0.2 s), among the
    places that leave each part at least two words and a quarter of the time (cut, not chipped: "And
    so my fellow Americans" alone says less than with the "ask not" after it); with no pause nor
    comma, nearest the middle.
    """
    words = list(words)
    if len(words) < 4 or words[-1].end - words[0].start <= longest:
        return [words]
    start, end = words[0].start, words[-1].end
    before = pause_before(words, runs)
    middle, least = (start + end) / 2, (end - start) / 4
    places = [i for i in range(2, len(words) - 1) if words[i].start - start >= least and end - words[i].start >= least]
    best = max(places or range(2, len(words) - 1), key=lambda i: (
        before.get(i, 0.0) + (0.2 if words[i - 1].text.rstrip().endswith((",", ";", ":")) else 0.0),
        -abs(words[i].start - middle)))
    return cut_long(words[:best], runs, longest) + cut_long(words[best:], runs, longest)
