"""Languages: detected per speech window, settled when unsure, stored per moment and per video.

The fast tests drive :func:`assign_languages` and :func:`resolve_languages` with a scripted
transcriber. The slow ones index real recordings (Mandarin, French, German, and English
switching to German at ~30 s) laid over real footage, with the packaged multilingual
Whisper base, and read the catalog.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.schema import SpeechSegment
from indexer.languages import LanguageGuess, assign_languages, resolve_languages
from indexer.speech import main_language, sentence_moments
from indexer.windows import SpeechOptions, Window
from models.types import SpeechRegion as R
from tests.conftest import error_rate, ffmpeg, make_speech_video, normalise

SR = 16000


# -- settling unsure guesses --------------------------------------------------------------

def G(language: str, probability: float, speech: float = 5.0) -> LanguageGuess:
    return LanguageGuess(language, probability, speech)


def test_sure_guesses_are_kept_and_unsure_ones_take_the_language_around_them():
    guesses = [G("fr", 0.9), G("es", 0.26), G("fr", 0.7), G("pt", 0.35)]
    assert resolve_languages(guesses) == ["fr", "fr", "fr", "fr"]


def test_a_confident_guess_on_a_word_or_two_is_not_trusted():
    # Whisper base on the single English word "publish" (0.7 s): pl 0.74
    guesses = [G("en", 0.99, 4.4), G("pl", 0.74, 0.7), G("en", 0.99, 4.7)]
    assert resolve_languages(guesses) == ["en", "en", "en"]
    assert resolve_languages(guesses, min_seconds=0.5) == ["en", "pl", "en"]


def test_an_unsure_guess_at_a_change_of_language():
    # its own guess when it is one of the two sides
    assert resolve_languages([G("en", 0.99), G("de", 0.4), G("de", 0.99)]) == ["en", "de", "de"]
    # else the main language (most sure seconds) when it is one of them
    guesses = [G("en", 0.99, 20), G("ru", 0.2), G("de", 0.99, 5)]
    assert resolve_languages(guesses) == ["en", "en", "de"]


def test_a_video_that_switches_language_keeps_unsure_stretches_on_their_side():
    # mostly English, but the unsure stretch sits in the German part
    guesses = [G("en", 0.99, 60), G("de", 0.95), G("nl", 0.3), G("de", 0.9)]
    assert resolve_languages(guesses) == ["en", "de", "de", "de"]


def test_nothing_sure_takes_the_weighted_vote_and_nothing_known_is_none():
    guesses = [G("ru", 0.19, 5), G("fr", 0.45, 4), G("fr", 0.3, 2)]
    assert resolve_languages(guesses) == ["fr", "fr", "fr"]
    assert resolve_languages([G("", 0.0)]) == [None]
    assert resolve_languages([]) == []


# -- windows ---------------------------------------------------------------------------------

class ScriptedTranscriber:
    """Detects the language by where the audio's first and last samples say it comes from."""

    backend_name = "scripted"
    model_name = "scripted"

    def __init__(self, by_span: dict[tuple[float, float], tuple[str, float]],
                 default: tuple[str, float] = ("en", 0.99)):
        self.by_span = by_span
        self.default = default
        self.calls: list[tuple[float, float]] = []

    def language_probabilities(self, audio: np.ndarray) -> list[tuple[str, float]]:
        span = (round(float(audio[0]), 1), round(float(audio[-1]), 1))  # the test audio's samples are their times
        self.calls.append(span)
        return [self.by_span.get(span, self.default)]


def _flat(plans):
    """assign_languages' parts of every window, in order."""
    return [part for parts in plans for part in parts]


def _clock(seconds: float) -> np.ndarray:
    """Audio whose every sample is its own time in seconds."""
    return (np.arange(int(seconds * SR)) / SR).astype(np.float32)


def test_a_window_that_holds_a_change_of_language_is_cut_there():
    # window 2 holds the end of the English (25.7-29.3) and the start of the German (30.8-41.6)
    windows = [Window((R(0, 25.7),)), Window((R(25.7, 29.3), R(30.8, 41.6))), Window((R(42.2, 59.9),))]
    t = ScriptedTranscriber({(0, 25.7): ("en", 0.99), (25.7, 41.6): ("de", 0.86), (25.7, 29.3): ("en", 0.99),
                             (30.8, 41.6): ("de", 0.99), (42.2, 59.9): ("de", 0.99)})
    planned = _flat(assign_languages(_clock(60), windows, t))
    assert [(w.start, w.end, lang) for w, lang in planned] == [
        (0, 25.7, "en"), (25.7, 29.3, "en"), (30.8, 41.6, "de"), (42.2, 59.9, "de")]
    # the windows, then the pieces of the one at the change
    assert t.calls == [(0, 25.7), (25.7, 41.6), (42.2, 59.9), (25.7, 29.3), (30.8, 41.6)]


def test_an_unsure_window_is_detected_piece_by_piece():
    windows = [Window((R(1.2, 2.5), R(2.7, 4.4), R(33.8, 35.0), R(35.3, 36.9)))]
    t = ScriptedTranscriber({(1.2, 36.9): ("ru", 0.19), (1.2, 2.5): ("fr", 0.63), (2.7, 4.4): ("fr", 0.79),
                             (33.8, 35.0): ("pt", 0.35), (35.3, 36.9): ("fr", 0.72)})
    planned = _flat(assign_languages(_clock(37), windows, t, SpeechOptions(max_language_pieces=3)))
    assert [(w.pieces, lang) for w, lang in planned] == [(windows[0].pieces, "fr")]
    # the window, then its three longest pieces; the shortest (33.8-35.0) takes the language around it
    assert t.calls == [(1.2, 36.9), (1.2, 2.5), (2.7, 4.4), (35.3, 36.9)]


def test_sure_windows_of_one_language_are_not_split_and_a_given_language_skips_detection():
    windows = [Window((R(0, 5), R(6, 10))), Window((R(12, 20), R(21, 30)))]
    t = ScriptedTranscriber({}, default=("zh", 0.98))
    assert [lang for _, lang in _flat(assign_languages(_clock(30), windows, t))] == ["zh", "zh"]
    assert len(t.calls) == 2
    t.calls.clear()
    planned = _flat(assign_languages(_clock(30), windows, t, SpeechOptions(language="de")))
    assert [(w, lang) for w, lang in planned] == [(w, "de") for w in windows] and t.calls == []


def test_moments_keep_their_sentence_language_and_the_main_language_is_the_longest():
    segs = [SpeechSegment(0, 4, "a", "en"), SpeechSegment(4.5, 8, "b", "en"), SpeechSegment(9, 12, "c", "de"),
            SpeechSegment(12, 30, "d", "de")]
    assert [m.language for m in sentence_moments(segs)] == ["en", "en", "de", "de"]
    assert main_language(segs) == "de"


def test_a_segment_that_grazes_a_cut_stays_off_the_silence():
    w = Window((R(1.24, 2.5), R(2.68, 4.36), R(33.78, 34.95), R(35.26, 36.87)))
    # Whisper starts the second "Bonjour" 0.04 s before the cut at 2.94 s of window audio
    assert w.span_to_absolute(2.9, 5.6) == pytest.approx((33.78, 36.75))
    assert w.span_to_absolute(0.0, 2.95) == pytest.approx((1.24, 4.36))
    assert w.span_to_absolute(0.5, 1.0) == pytest.approx((1.74, 2.24))


# -- the backends' detect_language ---------------------------------------------------------

@pytest.fixture(scope="module")
def base_hub(tmp_path_factory):
    """The packaged models with the packaged multilingual Whisper base."""
    from models import ModelHub, ModelsConfig, RoleConfig

    return ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path_factory.mktemp("cache"),
                                 roles={"transcriber": RoleConfig(model="base")}))


def test_faster_whisper_detects_the_language(base_hub, shared_media):
    from indexer.media import decode_audio
    from models import ModelHub, ModelsConfig, RoleConfig

    base = base_hub.required.transcriber
    assert base.model_name == "base" and not base.english_only
    zh = decode_audio(shared_media / "audio" / "zh_paddlespeech_paobu.wav")
    language, probability = base.detect_language(zh)
    assert language == "zh" and probability > 0.9
    with pytest.raises(ValueError):
        base.detect_language(np.zeros(0, np.float32))
    tiny_en = ModelHub(ModelsConfig(profile="packaged", roles={"transcriber": RoleConfig(model="tiny.en")}))
    assert tiny_en.required.transcriber.detect_language(zh) == ("en", 1.0)  # English-only: no detection


def test_openai_whisper_detects_the_language(tmp_path):
    from models.testing.tiny_whisper import make_tiny_openai_whisper
    from models.whisper_openai import OpenAIWhisperTranscriber

    fast = {"device": "cpu", "cpu_threads": 1}
    audio = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)
    multilingual = OpenAIWhisperTranscriber(str(make_tiny_openai_whisper(tmp_path / "m")), **fast)
    language, probability = multilingual.detect_language(audio)  # random weights: any language, a probability
    assert isinstance(language, str) and language and 0.0 <= probability <= 1.0
    english = OpenAIWhisperTranscriber(str(make_tiny_openai_whisper(tmp_path / "e", multilingual=False)), **fast)
    assert english.detect_language(audio) == ("en", 1.0)


# -- real recordings, Whisper base -----------------------------------------------------------

# (audio file, video name, expected language, most error the transcript may have against the ground
# truth: characters for Chinese, words for French). Whisper base misses a few characters of these
# clips, not always the same ones on every CPU (冰台 for 滨海, 佛 for 房, 飛行 for 分析).
CLIPS = [
    ("zh_aishell_BAC009S0724W0121.wav", "zh_aishell.mp4", "zh", 0.4),
    ("zh_funasr_binhai-xinqu.wav", "zh_funasr.mp4", "zh", 0.4),
    ("zh_paddlespeech_paobu.wav", "zh_paobu.mp4", "zh", 0.4),
    # French: the reference is Whisper medium's; base hears "êtes" for "allez" in both phrases (0.36)
    ("fr_bonjour_vous_allez_bien.mp3", "fr_bonjour.mp4", "fr", 0.4),
]
OFFSET = 1.0  # seconds of footage before the recording starts


def _duration(path: Path) -> float:
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.fixture(scope="module")
def indexed_languages(shared_media, tmp_path_factory, base_hub):
    """The clips laid over real footage, indexed once with the packaged Whisper base; returns the catalog rows."""
    from indexer.catalog import Catalog
    from indexer.writer import Indexer

    folder = tmp_path_factory.mktemp("multilingual")
    footage = shared_media / "video" / "talkinghead_carphone_noaudio.mp4"  # 176x144: quick to encode and scan
    audio = shared_media / "audio"
    for name, video, _, _ in CLIPS:
        make_speech_video(footage, audio / name, folder / video, OFFSET, _duration(audio / name) + OFFSET + 1.0)
    en_de = audio / "en-de_mit-license_multilingual.mp3"
    make_speech_video(footage, en_de, folder / "en_de.mp4", OFFSET, 62.0)
    german = tmp_path_factory.mktemp("cut") / "de.wav"  # the German half alone, 30.5-46 s of the recording
    ffmpeg("-ss", "30.5", "-t", "15.5", "-i", str(en_de), str(german))
    make_speech_video(footage, german, folder / "de.mp4", OFFSET, 17.5)

    index_dir = tmp_path_factory.mktemp("index")
    report = Indexer(index_dir, base_hub).index([folder])
    assert report.ok, [r.to_dict() for r in report.failed]
    with Catalog(index_dir) as catalog:
        rows = _Indexed({Path(v.path).name: (v, [m for m in catalog.moments_of(v.id) if m.kind == "speech"])
                         for v in catalog.videos()})
    rows.index_dir = index_dir
    return rows


class _Indexed(dict):
    """{video name: (video, speech moments)} and the ``index_dir`` they are in."""

    index_dir: Path


def _text(moments) -> str:
    import opencc

    return normalise(opencc.OpenCC("t2s").convert(" ".join(m.text for m in moments)))


def _speech_spans(truth: dict, length: float) -> list[tuple[float, float]]:
    """Where the ground truth says the recording has speech (seconds of the recording)."""
    if "segments" in truth:
        return [(s["start"], s["end"]) for s in truth["segments"]]
    if "speech_segments_ms" in truth:
        return [(a / 1000, b / 1000) for a, b in truth["speech_segments_ms"]]
    return [(0.0, length)]


@pytest.mark.slow
@pytest.mark.parametrize("name,video,language,bound", CLIPS, ids=[c[1] for c in CLIPS])
def test_language_per_video_and_moment(indexed_languages, shared_media, ground_truth, name, video, language, bound):
    v, moments = indexed_languages[video]
    assert v.language == language
    assert moments and all(m.language == language for m in moments), [(m.text, m.language) for m in moments]
    truth = ground_truth[f"audio/{name}"]
    reference = " ".join(s["text"] for s in truth["segments"]) if "segments" in truth else truth["transcript"]
    text = _text(moments)
    assert error_rate(reference, text, chars=language == "zh") <= bound, (reference, text)
    # each moment lies on speech (none spans the French recording's 29-s pause)
    spans = _speech_spans(ground_truth[f"audio/{name}"], _duration(shared_media / "audio" / name))
    for m in moments:
        assert any(OFFSET + a - 0.5 <= m.start < m.end <= OFFSET + b + 0.5 for a, b in spans), \
            (m.start, m.end, m.text, spans)


@pytest.mark.slow
def test_german_video(indexed_languages):
    v, moments = indexed_languages["de.mp4"]
    assert v.language == "de" and moments and all(m.language == "de" for m in moments)
    text = _text(moments)
    for word in ("software", "genehmigung", "dokumentationsdateien"):
        assert word in text, (word, text)


@pytest.mark.slow
def test_a_video_that_switches_from_english_to_german(indexed_languages):
    """English until ~29.3 s of the recording, German from ~30.8 s (+1 s of footage before it)."""
    v, moments = indexed_languages["en_de.mp4"]
    switch = OFFSET + 30.0
    english = [m for m in moments if m.end <= switch]
    german = [m for m in moments if m.start >= switch]
    assert len(english) + len(german) == len(moments), [(m.start, m.end, m.language) for m in moments]
    assert english and all(m.language == "en" for m in english), [(m.start, m.end, m.language) for m in english]
    assert german and all(m.language == "de" for m in german), [(m.start, m.end, m.language) for m in german]
    en_text, de_text = _text(english), _text(german)
    for phrase in ("permission is hereby granted", "free of charge", "copyright notice", "portions of the software"):
        assert phrase in en_text, (phrase, en_text)
    for phrase in ("software", "genehmigung", "zu veröffentlichen", "zu verteilen"):
        assert phrase in de_text, (phrase, de_text)
    assert v.language in ("en", "de")  # about 28 s of each: the one Whisper's segments make longer
    assert OFFSET - 0.5 <= moments[0].start and moments[-1].end <= OFFSET + 60.5


@pytest.mark.slow
@pytest.mark.parametrize("question,videos,audio", [
    ("广州房地产中介协会分析了什么", {"zh_aishell.mp4"}, "zh_aishell_BAC009S0724W0121.wav"),  # heard in Traditional
    ("我在滨海新区有房吗", {"zh_funasr.mp4"}, "zh_funasr_binhai-xinqu.wav"),  # Whisper heard 冰台新区
    ("跑步给身体健康带来什么", {"zh_paobu.mp4"}, "zh_paddlespeech_paobu.wav"),
    ("bonjour, est-ce que vous allez bien", {"fr_bonjour.mp4"}, "fr_bonjour_vous_allez_bien.mp3"),
    ("Genehmigung der Dokumentationsdateien", {"de.mp4", "en_de.mp4"}, None),
])
def test_found_by_a_question_in_its_language(indexed_languages, base_hub, shared_media, ground_truth, question,
                                             videos, audio):
    """Search itself (analyzer, engines, fusion) with questions in Chinese, French and German."""
    from retriever.api import Retriever

    hits = Retriever(indexed_languages.index_dir, base_hub).search(question, top_k=1)
    assert hits and hits[0].name in videos, [(h.name, h.score) for h in hits]
    best = hits[0].moments[0]
    centre = (best.start + best.end) / 2
    if audio is None:
        _, moments = indexed_languages[hits[0].name]
        assert any(m.start <= centre <= m.end for m in moments)
        return
    spans = _speech_spans(ground_truth[f"audio/{audio}"], _duration(shared_media / "audio" / audio))
    assert any(OFFSET + a - 0.5 <= centre <= OFFSET + b + 0.5 for a, b in spans), (best.start, best.end, spans)
