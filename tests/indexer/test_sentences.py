"""Long sentences cut where the speaker pauses (indexer.sentences), and the English reader (Moonshine base
reading, Whisper base placing its words) that the packaged default uses."""

import numpy as np
import pytest

from indexer.sentences import cut_long, pause_before, pauses, quiet_runs
from indexer.windows import Window
from models.types import SpeechRegion as R
from models.types import Word
from tests.conftest import JFK_TEXT, error_rate


def _words(*spec):
    """Words of 0.4 s each, one after the other from 0 (an alignment leaves no gaps)."""
    return [Word(0.4 * i, 0.4 * (i + 1), f" {w}") for i, w in enumerate(spec)]


def test_a_short_sentence_is_left_whole():
    words = _words("my", "father", "has", "revealed", "the", "name.")
    assert cut_long(words, [], longest=7.0) == [words]


def test_a_long_sentence_is_cut_at_its_longest_pause():
    words = _words(*"and so my fellow americans ask not what your country can do for you ask what".split())  # 6.4 s
    runs = [(1.95, 2.1), (4.0, 4.6)]  # a short pause before "ask" (2.0 s), a long one before "can" (4.0 s)
    parts = cut_long(words, runs, longest=4.0)
    assert [len(p) for p in parts] == [10, 6] and parts[1][0].text == " can"
    assert [w for p in parts for w in p] == words  # nothing lost, nothing repeated
    # a longer pause that would leave a sliver (under a quarter of the sentence) is not taken
    assert cut_long(words, runs + [(5.5, 6.3)], longest=4.0) == parts


def test_without_pauses_a_comma_then_the_middle_decide():
    words = _words("one", "two", "three,", "four", "five", "six", "seven", "eight", "nine", "ten")
    assert cut_long(words, [], longest=3.0)[0][-1].text == " three,"
    plain = _words(*"a b c d e f g h i j".split())
    first, second = cut_long(plain, [], longest=3.9)
    assert (len(first), len(second)) == (5, 5)


def test_a_pause_goes_to_the_nearest_word_boundary():
    words = _words("ask", "not", "what", "your", "country")
    # the pause lies inside "what" (0.8-1.2 s): alignment gave it to that word; its boundary with "not" is nearest
    assert pause_before(words, [(0.85, 1.1)]) == {2: pytest.approx(0.25)}
    assert pause_before(words, [(5.0, 6.0)]) == {}  # far from every boundary


def test_quiet_runs_are_the_silences_of_the_audio():
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    audio = np.concatenate([tone, np.zeros(sr // 2, np.float32), tone, np.zeros(sr // 20, np.float32), tone])
    runs = quiet_runs(audio, sr)
    assert len(runs) == 1  # the 50-ms gap is too short to be a pause
    assert runs[0][0] == pytest.approx(1.0, abs=0.03) and runs[0][1] == pytest.approx(1.5, abs=0.03)
    # the silences VAD cut out between a window's pieces are pauses too, in the file's time
    window = Window((R(0.0, 1.0), R(1.5, 3.0)))
    assert (1.0, 1.5) in pauses(audio, window, sr)


# -- the English reader, real models ---------------------------------------------------------------

@pytest.fixture(scope="module")
def default_hub(tmp_path_factory):
    from models import ModelHub, ModelsConfig

    return ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path_factory.mktemp("cache")))


def test_the_default_reads_english_with_moonshine_and_times_it_with_whisper(default_hub, shared_media):
    """JFK through the speech stage with the default settings: Moonshine reads (the reading counters say so),
    every moment is a sentence of at most 7 s or a short one, in order, and the text is close to what was said."""
    from indexer.media import decode_audio
    from indexer.speech import transcribe_speech

    transcriber = default_hub.required.transcriber
    audio = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")
    transcriber.readings.update(moonshine=0, whisper=0, given_back=0)
    segments = transcribe_speech(audio, default_hub.required.voice_activity, transcriber)
    assert transcriber.readings["moonshine"] >= 1 and transcriber.readings["whisper"] == 0
    assert transcriber.readings["given_back"] == 0
    assert len(segments) >= 2 and all(s.language == "en" for s in segments)
    assert all(s.end - s.start <= 7.0 or len(s.text.split()) < 4 for s in segments)
    assert all(a.start < a.end <= b.start + 1e-6 for a, b in zip(segments, segments[1:]))
    assert segments[0].start < 1.0 and segments[-1].end == pytest.approx(audio.size / 16000, abs=1.0)
    assert error_rate(JFK_TEXT, " ".join(s.text for s in segments)) <= 0.15


def test_an_unsure_english_reading_is_left_to_whisper(default_hub, shared_media):
    """Where Moonshine's mean token log-probability is under reader_min_logprob, Whisper reads the speech."""
    from indexer.media import decode_audio

    transcriber = default_hub.required.transcriber
    audio = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")
    transcriber.readings.update(moonshine=0, whisper=0, given_back=0)
    saved = transcriber.reader_min_logprob
    transcriber.reader_min_logprob = 0.0  # every reading unsure
    try:
        result = transcriber.transcribe(audio, language="en")
    finally:
        transcriber.reader_min_logprob = saved
    assert transcriber.readings == {"moonshine": 0, "whisper": 1, "given_back": 1}
    assert error_rate(JFK_TEXT, result.text) <= 0.15


def test_speech_the_english_reader_leaves_unread_goes_to_whisper(default_hub, shared_media):
    """Moonshine can write nothing for speech that opens with silence (JFK after 2 s of it, here): Whisper reads."""
    from indexer.media import decode_audio

    transcriber = default_hub.required.transcriber
    jfk = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")
    audio = np.concatenate([np.zeros(32000, np.float32), jfk, np.zeros(48000, np.float32)])
    result = transcriber.transcribe(audio, language="en")
    assert error_rate(JFK_TEXT, result.text) <= 0.15
    assert all(0.0 <= s.start < s.end <= audio.size / 16000 + 0.5 for s in result.segments)


def test_aligned_words_become_sentences():
    from models.whisper_ct2 import _ends_sentence, _sentences

    spec = [(0.0, 2.5, " And"), (2.5, 2.8, " so"), (2.8, 3.1, " Mr."), (3.1, 3.5, " Smith"), (3.5, 3.8, " went"),
            (3.8, 4.1, " home."), (4.1, 4.4, " Then"), (4.4, 4.7, " he"), (4.7, 8.0, " left!")]
    first, second = _sentences([{"start": a, "end": b, "word": t} for a, b, t in spec], -0.1)
    assert (first.text, second.text) == ("And so Mr. Smith went home.", "Then he left!")  # "Mr." ends none
    # the first and last words are no longer than twice the median word: the alignment gives them the audio's edges
    assert first.start == pytest.approx(2.5 - 0.6) and second.end == pytest.approx(4.7 + 0.6)
    assert first.avg_logprob == -0.1 and len(first.words) == 6
    assert not _ends_sentence(" U.S.") and _ends_sentence(' "over."') and _ends_sentence(" now?")


def test_english_reader_whisper_as_the_docs_show_it(tmp_path, shared_media):
    """A videoqa.toml holding only ``english_reader = "whisper"``: Whisper base reads English itself."""
    from app import VideoQA, load_settings
    from indexer.media import decode_audio

    toml = tmp_path / "videoqa.toml"
    toml.write_text('english_reader = "whisper"\n')
    env = {"VIDEOQA_CONFIG": str(toml), "VIDEOQA_INDEX_DIR": str(tmp_path / "index"),
           "VIDEOQA_CACHE_DIR": str(tmp_path / "cache"), "VIDEOQA_PROFILE": "packaged"}
    transcriber = VideoQA(load_settings(env=env)).hub.required.transcriber
    audio = decode_audio(shared_media / "audio" / "en_culprits-name.flac")
    result = transcriber.transcribe(audio, language="en")
    assert transcriber.readings == {"moonshine": 0, "whisper": 1, "given_back": 0}
    assert error_rate("my father has revealed the culprit's name", result.text) <= 0.2


def test_an_unknown_english_reader_is_a_clear_error():
    from models.whisper_ct2 import FasterWhisperTranscriber

    with pytest.raises(ValueError, match="english_reader 'parakeet'"):
        FasterWhisperTranscriber("base", english_reader="parakeet")


def test_videoqa_models_names_the_english_reader_and_its_wheel(tmp_path):
    from models import ModelsConfig, report
    from models.whisper_ct2 import FasterWhisperTranscriber

    rows = {(r["role"], r["profile"]): r for r in report(ModelsConfig(profile="packaged", cache_dir=tmp_path))}
    (line,) = rows[("transcriber", "packaged")]["helpers"]
    assert line.startswith("English read by: moonshine base-en") and "packaged wheel moonshine-cpp" in line
    assert FasterWhisperTranscriber("base", english_reader="whisper").helpers() == ["English read by: Whisper itself"]
    assert FasterWhisperTranscriber("small").helpers() == ["English read by: Whisper itself"]  # auto: small reads
