"""OpenAIWhisperTranscriber on a tiny random-weight openai-whisper checkpoint of the real architecture.

Random weights write nonsense: these tests check loading, the decoding path and the shape
of the output, never the words (tests/models/test_backends.py does that with real weights).
"""

import shutil

import numpy as np
import pytest

from models import create
from models.errors import ModelNotFoundError
from models.testing.tiny_whisper import make_tiny_openai_whisper
from models.types import Transcriber, Transcript, Word
from models.whisper_openai import OpenAIWhisperTranscriber

# Random weights rarely write end-of-text: without a cap each 30-s window decodes 224 tokens
# with 5 beams (seconds per call on a small CPU). One thread: a tiny model gains nothing from
# more, and loses much when other work shares the cores.
FEW_TOKENS = 24
FAST = {"device": "cpu", "max_new_tokens": FEW_TOKENS, "cpu_threads": 1}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_openai_whisper(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def transcriber(checkpoint):
    return create("transcriber", "openai-whisper", model=str(checkpoint), **FAST)


@pytest.fixture(scope="module")
def speech(shared_media):
    from indexer.media import decode_audio

    path = shared_media / "audio" / "en_jfk_inaugural_ask-not.flac"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return decode_audio(path)[: 16000 * 3]


def _check(result, seconds):
    assert isinstance(result, Transcript)
    assert isinstance(result.language, str) and result.language
    for seg in result.segments:
        assert 0.0 <= seg.start <= seg.end <= seconds
        assert isinstance(seg.text, str) and seg.text == seg.text.strip()
        assert np.isfinite(seg.avg_logprob) and 0.0 <= seg.no_speech_prob <= 1.0


def test_loads_from_a_checkpoint_path(checkpoint, transcriber):
    assert isinstance(transcriber, Transcriber)
    assert not transcriber.loaded
    assert transcriber.locate().path == checkpoint.resolve() and transcriber.locate().source == "local path"
    transcriber.load()
    transcriber.load()  # idempotent
    assert transcriber.loaded and transcriber._model.dims.n_text_state == 64


def test_the_path_setting_wins(checkpoint, tmp_path):
    t = OpenAIWhisperTranscriber("small", path=str(checkpoint), device="cpu")
    assert t.locate().path == checkpoint.resolve()
    folder = OpenAIWhisperTranscriber("small", path=str(tmp_path), device="cpu")
    shutil.copy(checkpoint, tmp_path / "small.pt")  # a folder holding NAME.pt, like whisper's download_root
    assert folder.locate().path == (tmp_path / "small.pt").resolve()


def test_transcribes_real_speech(transcriber, speech, capsys):
    result = transcriber.transcribe(speech)
    _check(result, 3.0)
    assert result.segments, "random weights still write some text"
    assert 0.0 < result.language_probability <= 1.0
    assert capsys.readouterr().out == ""  # openai-whisper prints only when verbose


@pytest.mark.slow  # numba compiles openai-whisper's DTW on first use (5-10 s)
def test_word_timestamps(transcriber, speech):
    result = transcriber.transcribe(speech, word_timestamps=True)
    _check(result, 3.0)
    words = [w for seg in result.segments for w in seg.words]
    assert words and all(isinstance(w, Word) and 0.0 <= w.start <= w.end <= 3.0 for w in words)


def test_a_given_language_is_kept(transcriber, speech):
    result = transcriber.transcribe(speech, language="en", prompt="Inaugural address, 1961.")
    _check(result, 3.0)
    assert result.language == "en" and result.language_probability == 1.0


def test_silence_and_empty_audio(transcriber):
    assert transcriber.transcribe(np.zeros(0, np.float32)).segments == []
    _check(transcriber.transcribe(np.zeros(16000, np.float32)), 1.0)


def test_english_only_models_force_english(tmp_path, speech):
    english = make_tiny_openai_whisper(tmp_path, multilingual=False)
    t = OpenAIWhisperTranscriber(str(english), **FAST)
    result = t.transcribe(speech, language="de")
    assert result.language == "en" and result.language_probability == 1.0
    _check(result, 3.0)


def test_found_in_openai_whispers_download_cache(monkeypatch, tmp_path, checkpoint, speech):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "whisper").mkdir()
    shutil.copy(checkpoint, tmp_path / "whisper" / "small.pt")
    t = OpenAIWhisperTranscriber("small", **FAST)
    assert t.locate().source == "openai-whisper cache"
    # small's tuned alignment heads do not fit the tiny model: it keeps the default ones
    _check(t.transcribe(speech[:16000]), 1.0)


def test_default_model_is_small():
    t = OpenAIWhisperTranscriber()
    assert t.model_name == "small" and t.hf_repo is None and not t.loaded


def test_missing_checkpoint_says_where_it_looked_and_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as err:
        OpenAIWhisperTranscriber("turbo").locate()
    message = str(err.value)
    assert message.startswith("transcriber:") and "'turbo'" in message
    assert str(tmp_path / "whisper" / "large-v3-turbo.pt") in message
    assert "whisper.load_model('turbo')" in message
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        OpenAIWhisperTranscriber(path=str(tmp_path / "nothing.pt")).locate()
