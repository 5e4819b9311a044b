import numpy as np
import pytest

from indexer.schema import SpeechSegment
from indexer.speech import sentence_moments, transcribe_speech
from indexer.windows import SpeechOptions, Window, overlap_cuts, plan_windows
from models.types import SpeechRegion as R
from tests.conftest import JFK_TEXT, error_rate, normalise


def test_regions_are_grouped_up_to_the_window_length():
    windows = plan_windows([R(0, 5), R(7, 15), R(20, 30), R(31, 40)], max_window=20)
    assert [w.pieces for w in windows] == [(R(0, 5), R(7, 15)), (R(20, 30), R(31, 40))]
    assert windows[0].speech == 13


def test_long_region_is_split_with_overlap():
    windows = plan_windows([R(10, 60)], max_window=20, overlap=2)
    spans = [(w.start, w.end) for w in windows]
    assert spans == [(10, 30), (28, 48), (46, 60)]


def test_window_maps_cut_audio_back_to_video_time():
    w = Window((R(10, 12), R(20, 25)))
    assert w.to_absolute(0.0) == 10
    assert w.to_absolute(1.5) == 11.5
    assert w.to_absolute(2.5) == pytest.approx(20.5)
    assert w.to_absolute(99) == 25
    assert w.after(21).pieces == (R(21, 25),)
    assert w.after(30) is None


def test_overlapping_windows_are_divided_at_the_centre():
    windows = plan_windows([R(10, 60), R(70, 75)], max_window=20, overlap=2)
    inf = float("inf")
    assert [(w.start, w.end) for w in windows] == [(10, 30), (28, 48), (46, 75)]  # the last takes R(70, 75)
    assert overlap_cuts(windows) == [(-inf, 29.0), (29.0, 47.0), (47.0, inf)]


def _hub():
    from models import ModelHub, ModelsConfig, RoleConfig

    # English speech: the fast English-only model (the multilingual default is tested in test_multilingual.py)
    return ModelHub(ModelsConfig(profile="packaged", roles={"transcriber": RoleConfig(model="tiny.en")}))


def test_split_speech_is_transcribed_once(shared_media):
    """Real continuous speech in windows far shorter than its regions: overlaps must not repeat words."""
    from indexer.media import decode_audio

    audio = decode_audio(shared_media / "audio" / "en-de_mit-license_multilingual.mp3")[: 16000 * 29]
    hub = _hub()
    segs = transcribe_speech(audio, hub.required.voice_activity, hub.required.transcriber,
                             SpeechOptions(max_window=5.0, overlap=1.0))
    text = normalise(" ".join(s.text for s in segs))
    for phrase in ("permission is hereby granted", "free of charge", "copyright notice"):
        assert text.count(phrase) == 1, (phrase, text)
    starts = [s.start for s in segs]
    assert starts == sorted(starts) and all(s.end <= 29.5 for s in segs)


def test_each_sentence_is_a_moment_with_its_own_times():
    segs = [SpeechSegment(0, 4, " a ", "en"), SpeechSegment(4.5, 8, "b", "en"), SpeechSegment(9, 9.5, "  "),
            SpeechSegment(20, 22, "c", "de")]
    moments = sentence_moments(segs)
    assert [(m.start, m.end, m.text, m.language, m.kind) for m in moments] == [
        (0, 4, "a", "en", "speech"), (4.5, 8, "b", "en", "speech"), (20, 22, "c", "de", "speech")]


def test_absolute_times_of_speech_after_silence(shared_media):
    from indexer.media import decode_audio

    hub = _hub()
    jfk = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")
    audio = np.concatenate([np.zeros(16000 * 20, np.float32), jfk, np.zeros(16000 * 5, np.float32)])
    segs = transcribe_speech(audio, hub.required.voice_activity, hub.required.transcriber, SpeechOptions())
    assert error_rate(JFK_TEXT, " ".join(s.text for s in segs)) <= 0.1
    assert 19.5 <= segs[0].start <= 21.5 and 29.0 <= segs[-1].end <= 31.5
    assert all(s.language == "en" for s in segs)
