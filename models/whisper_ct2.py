"""Whisper through faster-whisper (CTranslate2): the fast choice on CPU."""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Sequence

import numpy as np

from models.base import LazyModel, WhisperLanguages, ranked_languages
from models.errors import ModelNotFoundError
from models.types import ModelLocation, Transcript, TranscriptSegment, Word

if TYPE_CHECKING:
    from models.moonshine import MoonshineTranscriber

__all__ = ["FasterWhisperTranscriber", "WHISPER_HF_REPOS", "ENGLISH_READERS"]

log = logging.getLogger(__name__)
ENGLISH_READERS = ("auto", "moonshine", "whisper")

# Model size -> the CTranslate2 conversion on the Hugging Face Hub (as faster-whisper names them).
WHISPER_HF_REPOS = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium": "Systran/faster-whisper-medium",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}


_ALIGN_SAMPLES = 30 * 16000  # Whisper places words within one 30-s encoding
_SENTENCE_END = (".", "?", "!", "…")
_NOT_AN_END = re.compile(r"(?:[A-Za-z]\.)+|(?:Mr|Mrs|Ms|Dr|St|Prof|Mt|vs)\.")  # "U.S.", "Mr.": no end


def _ends_sentence(word: str) -> bool:
    bare = word.strip().rstrip("\"')]”")
    return bare.endswith(_SENTENCE_END) and not _NOT_AN_END.fullmatch(bare)


def _clamped(words: list[dict]) -> list[Word]:
    """Aligned words (faster-whisper's dicts) as :class:`Word`; the first and the last no longer than
    twice the median word. The alignment gives the audio's edges to them: with 2 s of noise before
    "And so my fellow Americans", "And" spans 0.0-2.5 s (faster-whisper clamps its own words alike)."""
    out = [Word(float(w["start"]), float(w["end"]), w["word"]) for w in words]
    if len(out) < 3:
        return out
    longest = 2 * max(float(np.median([w.end - w.start for w in out])), 0.1)
    first, last = out[0], out[-1]
    if first.end - first.start > longest:
        out[0] = Word(first.end - longest, first.end, first.text)
    if last.end - last.start > longest:
        out[-1] = Word(last.start, last.start + longest, last.text)
    return out


def _sentences(words: list[dict], logprob: float) -> list[TranscriptSegment]:
    """Aligned words (faster-whisper's dicts) grouped into sentences, one ending at . ? ! or … (not
    "Mr." nor "U.S."); the speech stage cuts a long one where the speaker pauses (indexer.sentences)."""
    out: list[TranscriptSegment] = []
    current: list[Word] = []
    clamped = _clamped(words)
    for i, w in enumerate(clamped):
        current.append(w)
        if _ends_sentence(w.text) or i == len(clamped) - 1:
            text = "".join(x.text for x in current).strip()
            out.append(TranscriptSegment(current[0].start, current[-1].end, text, logprob, 0.0, tuple(current)))
            current = []
    return out


class FasterWhisperTranscriber(LazyModel, WhisperLanguages):
    """Transcribes one window of audio at a time with fixed decoding settings.

    Decoding follows DESIGN.md section 1.4: temperature 0, beam search,
    ``no_repeat_ngram_size`` against repetition, the previous window's text as prompt.
    Options: ``beam_size``, ``temperature``, ``no_repeat_ngram_size``, ``compute_type``
    (``auto``: int8 on CPU, float16 on CUDA), ``cpu_threads`` (0: all cores) and
    ``english_reader``: who reads speech in English. ``moonshine``: Moonshine base reads it and
    Whisper only places its words in time (:meth:`_read_english`); ``whisper``: Whisper reads
    everything; ``auto`` (the default): Moonshine under the multilingual Whisper tiny and base,
    whose English it reads better in about half the time (docs/EVALUATION.md, BENCHMARKS.md),
    Whisper under larger models and English-only ones (tiny.en).
    """

    role = "transcriber"
    backend_name = "faster-whisper"

    def __init__(self, model: str | None = None, *, beam_size: int = 5, temperature: float = 0.0,
                 no_repeat_ngram_size: int = 6, compute_type: str = "auto", cpu_threads: int = 0,
                 english_reader: str = "auto", **kw):
        super().__init__(model, **kw)
        if english_reader not in ENGLISH_READERS:
            raise ValueError(f"english_reader {english_reader!r}, expected one of: {', '.join(ENGLISH_READERS)}")
        self.english_reader = english_reader
        self.reader_min_logprob = -0.25  # under this the English reader is unsure (:meth:`_read_english`)
        self._reader: MoonshineTranscriber | None | bool = None  # False: auto found no Moonshine
        self.beam_size = beam_size
        self.temperature = temperature
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self._run_lock = threading.Lock()
        self._kept_encodings: list[tuple[np.ndarray, object]] = []  # (features, encoding) of detections, newest first
        self.kept_encodings = 8  # 3 MB each with base, 8 MB with large-v3 (0: none kept, the plain encoder)
        self._transcribed: list[tuple[np.ndarray, object]] = []  # those the latest transcription made
        self._detecting = False
        self.encoder_passes = {"run": 0, "reused": 0}  # how often the encoder ran, and was spared
        # transcriptions by who wrote the text, and English readings the English reader gave back to Whisper
        self.readings = {"moonshine": 0, "whisper": 0, "given_back": 0}

    def _hf_repo_for(self, model: str) -> str | None:
        return WHISPER_HF_REPOS.get(model) or super()._hf_repo_for(model)

    @property
    def english_only(self) -> bool:
        """True for English-only models (``*.en``); once loaded, the model itself says."""
        if self._loaded:
            return not self._model.model.is_multilingual
        return self.model_name.endswith(".en")

    def _load(self, location: ModelLocation, device: str) -> None:
        from faster_whisper import WhisperModel

        compute = self.compute_type
        if compute == "auto":
            compute = "float16" if device == "cuda" else "int8"
        model = WhisperModel(
            str(location.path),
            device=device,
            compute_type=compute,
            cpu_threads=self.cpu_threads or (os.cpu_count() or 1),
            local_files_only=True,
        )
        # Detecting the language costs a pass of the encoder over 30 s of audio, as much as
        # transcribing a window's worth of speech does (0.8-1 s with base on 2 cores), and
        # faster-whisper's transcribe() encodes the same audio again. So encoder outputs are
        # kept, and this model's encode() returns one when asked for exactly the same features
        # (compared in full, so anything else is encoded as usual):
        # * those of the last few detections, for the transcriptions that follow them (a few,
        #   not one: an unsure window's pieces are detected one by one before the window is
        #   transcribed);
        # * those of the latest transcription, for a detection of the same audio after it (the
        #   transcript guard detects the language of a transcript it doubts, then reads the
        #   audio again from that detection's encoding). Only the latest: kept with the
        #   detections they would push out the encodings of windows still to be transcribed.
        plain_encode = model.encode

        def encode(features):
            if self.kept_encodings <= 0:
                self.encoder_passes["run"] += 1
                return plain_encode(features)
            found = next(((segment, encoding) for segment, encoding in (*self._kept_encodings, *self._transcribed)
                          if segment.shape == features.shape and np.array_equal(segment, features)), None)
            if found is not None:
                self.encoder_passes["reused"] += 1
            else:
                self.encoder_passes["run"] += 1
                # a copy: transcribe() passes views of its feature array
                found = (np.array(features), plain_encode(features))
                if not self._detecting:
                    self._transcribed.append(found)
            if self._detecting and all(found[1] is not encoding for _, encoding in self._kept_encodings):
                self._kept_encodings = ([found] + self._kept_encodings)[: self.kept_encodings]
            return found[1]

        model.encode = encode
        self._model = model

    def _ranked(self, audio: np.ndarray, languages: Sequence[str] | None) -> list[tuple[str, float]]:
        """Every language's probability for the first 30 s of ``audio``; its encoding is kept (newest first)."""
        from faster_whisper.audio import pad_or_trim

        extractor = self._model.feature_extractor
        features = extractor(audio)
        # the first 30-s segment exactly as transcribe() will cut it, so that its encoding can be reused
        segment = pad_or_trim(features[:, : min(extractor.nb_max_frames, max(features.shape[-1] - 1, 1))])
        self._detecting = True
        try:
            encoding = self._model.encode(segment)
        finally:
            self._detecting = False
        tokens = self._model.model.detect_language(encoding)[0]
        return ranked_languages([(token[2:-2], p) for token, p in tokens], languages)

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None, language: str | None = None,
                   word_timestamps: bool = False, languages: Sequence[str] | None = None) -> Transcript:
        audio, language = self._begin(audio, language)
        with self._run_lock:
            ranked: list[tuple[str, float]] = []
            self._transcribed = []
            if language is None and audio.size:
                ranked = self._ranked(audio, languages)
                language = ranked[0][0]
            if language == "en" and 0 < audio.size <= _ALIGN_SAMPLES and self._english() is not None:
                read = self._read_english(audio)
                if read is not None:
                    self.readings["moonshine"] += 1
                    return Transcript(read, "en", ranked[0][1] if ranked else 1.0, tuple(ranked))
                self.readings["given_back"] += 1
            self.readings["whisper"] += 1
            segments, info = self._model.transcribe(
                audio,
                language=language,
                task="transcribe",
                beam_size=self.beam_size,
                temperature=self.temperature,
                initial_prompt=prompt or None,
                condition_on_previous_text=True,
                no_repeat_ngram_size=self.no_repeat_ngram_size,
                vad_filter=False,  # the indexer has already cut the audio with Silero VAD
                without_timestamps=False,
                word_timestamps=word_timestamps,
            )
            out = [
                TranscriptSegment(s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob,
                                  tuple(Word(w.start, w.end, w.word) for w in (s.words or ())))
                for s in segments
                if s.text.strip()
            ]
        probability = ranked[0][1] if ranked else info.language_probability
        return Transcript(out, info.language, probability, tuple(ranked))

    def _english(self) -> MoonshineTranscriber | None:
        """The English reader, or None when Whisper reads English (see the class docstring)."""
        if self._reader is None:
            from models.moonshine import MoonshineTranscriber

            small = self.model_name in ("tiny", "base")  # multilingual: an English-only Whisper reads English
            if self.english_reader == "whisper" or (self.english_reader == "auto" and not small):
                self._reader = False
            else:
                reader = MoonshineTranscriber(cache_dir=self.cache_dir, device=self.device,
                                              cpu_threads=self.cpu_threads)
                try:
                    reader.locate()
                    self._reader = reader
                except ModelNotFoundError as exc:
                    if self.english_reader != "auto":
                        raise
                    log.warning("Whisper reads English: the English reader Moonshine base is missing (%s)", exc)
                    self._reader = False
        return self._reader or None

    def helpers(self) -> list[str]:
        """What else this backend loads, and where its weights are (``videoqa models``)."""
        try:
            reader = self._english()
        except ModelNotFoundError as exc:
            return [f"English read by: moonshine, missing: {exc}"]
        if reader is None:
            return ["English read by: Whisper itself"]
        where = reader.locate()
        return [f"English read by: moonshine {reader.model_name}, found: {where.source} ({where.path})"]

    def _read_english(self, audio: np.ndarray) -> list[TranscriptSegment] | None:
        """English read by the English reader, its words placed in time by Whisper, in sentences;
        None when the reader is unsure of its text (Whisper reads it then).

        Whisper's alignment (the cross-attention of its timing heads, as for its own word times)
        runs its decoder once over the given text, on the encoding of the audio, which the
        language detection before has usually made already: no token is generated.

        Unsure: a mean token log-probability under ``reader_min_logprob``. Moonshine reads the
        English recordings with ground truth at -0.02 to -0.20 (the hardest, LRS2 `00019`, at
        -0.20 and still better than Whisper base), and two voices at once, which Whisper base
        reads better, at -0.28 (docs/EVALUATION.md).
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import merge_punctuations

        read = self._english().transcribe(audio)
        if not read.segments:
            # nothing read: noise, or speech Moonshine missed (it can stop at once when the audio
            # opens with silence), which Whisper is given then
            return [] if audio.size <= 16000 else None
        if read.segments[0].avg_logprob < self.reader_min_logprob:
            log.debug("English reader unsure (mean log-probability %.2f): Whisper reads", read.segments[0].avg_logprob)
            return None
        text = read.segments[0].text
        extractor = self._model.feature_extractor
        features = extractor(audio)
        frames = min(extractor.nb_max_frames, max(features.shape[-1] - 1, 1))
        encoding = self._model.encode(pad_or_trim(features[:, :frames]))
        tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe",
                              language="en")
        tokens = tokenizer.encode(" " + text)
        words = self._model.find_alignment(tokenizer, [tokens], encoding, frames)[0]
        merge_punctuations(words, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        words = [w for w in words if w["word"]]
        return _sentences(words, read.segments[0].avg_logprob) if words else None

    def forget_encodings(self) -> None:
        """Drop the kept encoder outputs (a benchmark that reads the same audio again starts cold)."""
        with self._run_lock:
            self._kept_encodings, self._transcribed = [], []

    def _detect(self, audio: np.ndarray, languages: Sequence[str] | None) -> list[tuple[str, float]]:
        with self._run_lock:
            # the encoding is kept for a transcription of the same audio, which usually follows
            return self._ranked(audio, languages)
