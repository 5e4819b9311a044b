import numpy as np
import pytest

from indexer.schema import SpeechSegment
from indexer.speech import SpeechOptions, Window, _dedupe_overlaps, group_moments, plan_windows, transcribe_speech
from models.types import SpeechRegion as R
from tests.conftest import JFK_TEXT, normalise


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


def test_overlap_duplicates_are_dropped():
    segs = [SpeechSegment(0, 5, "one two three"), SpeechSegment(4.2, 5.1, "three"), SpeechSegment(6, 8, "four")]
    assert [s.text for s in _dedupe_overlaps(segs)] == ["one two three", "four"]


def test_moments_do_not_span_long_pauses_or_exceed_the_limit():
    segs = [SpeechSegment(0, 4, "a"), SpeechSegment(4.5, 8, "b"), SpeechSegment(20, 22, "c"),
            SpeechSegment(22, 30, "d"), SpeechSegment(30, 38, "e")]
    moments = group_moments(segs, max_seconds=15, max_gap=2)
    assert [(m.start, m.end, m.text) for m in moments] == [(0, 8, "a b"), (20, 30, "c d"), (30, 38, "e")]


def test_absolute_times_of_speech_after_silence(shared_media):
    from indexer.media import decode_audio
    from models import ModelHub, ModelsConfig

    hub = ModelHub(ModelsConfig(profile="packaged"))
    jfk = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")
    audio = np.concatenate([np.zeros(16000 * 20, np.float32), jfk, np.zeros(16000 * 5, np.float32)])
    segs = transcribe_speech(audio, hub.require("voice_activity"), hub.require("transcriber"), SpeechOptions())
    assert normalise(" ".join(s.text for s in segs)) == normalise(JFK_TEXT)
    assert 19.5 <= segs[0].start <= 21.5 and 29.0 <= segs[-1].end <= 31.5
    assert all(s.language == "en" for s in segs)
