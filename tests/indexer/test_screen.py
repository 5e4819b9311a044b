"""Screen moments from one decode pass: the text's span, no text where there is none, failures that stay local."""

import logging

import pytest

from indexer.decode import decode_passes
from indexer.frames import decode_frames
from indexer.keyframes import KeyframeOptions
from indexer.screen import ScreenOptions, ScreenReader
from models.errors import ConfigError
from tests.conftest import SCREEN_VIDEOS, cer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("key", ["scoreboard", "notice"])
def test_a_caption_becomes_one_screen_moment_over_its_span(hub, screen_videos, key):
    video = screen_videos[key]
    text, _, first, last = SCREEN_VIDEOS[key][2][0]
    before = decode_passes(video)
    frames = decode_frames(video, hub)
    assert decode_passes(video) == before + 1  # keyframes and text reading share one decode
    assert frames.stats.delivered["keyframes"] >= 10 and frames.stats.delivered["screen"] >= 9
    screen = [m for m in frames.screen if cer(text, m.text) <= 0.15]
    assert len(screen) == 1, frames.screen  # the same line over consecutive frames: one moment
    moment = screen[0]
    assert moment.kind == "screen" and moment.language == ("zh" if key == "notice" else "en")
    step = 1.0 / ScreenOptions().sample_fps
    assert first - 0.1 <= moment.start <= first + step  # first seen at the first sample that shows it
    assert last - step <= moment.end <= last + step
    assert moment.end - moment.start >= (last - first) - step
    # The frame it was read from is a keyframe at the moment's start (its thumbnail).
    thumb = [k for k in frames.keyframes if abs(k.t - moment.start) < 1e-6]
    assert thumb and thumb[0].jpeg[:2] == b"\xff\xd8" and thumb[0].width == 320
    # Text is read where it may have changed only: unchanged boxes keep their text.
    assert frames.screen_stats.reused >= 1


def test_a_video_without_text_gets_no_screen_moments(hub, screen_videos):
    frames = decode_frames(screen_videos["plain"], hub)
    assert frames.screen == [] and frames.keyframes
    assert frames.screen_stats.detected >= 1  # looked at, found nothing worth keeping


class _Chokes:
    """The real reader, failing while ``broken`` is set (as a reader may on one odd picture)."""

    def __init__(self, reader):
        self.reader, self.broken = reader, False
        self.languages, self.backend_name = reader.languages, reader.backend_name

    def detect(self, image):
        if self.broken:
            raise RuntimeError("onnxruntime: cannot run on this picture")
        return self.reader.detect(image)

    def read(self, image, boxes=None):
        if self.broken:
            raise RuntimeError("onnxruntime: cannot run on this picture")
        return self.reader.read(image, boxes)


def test_a_frame_the_reader_fails_on_fails_alone(hub, screen_videos, caplog):
    from indexer.decode import decode_pass

    video = screen_videos["scoreboard"]
    text, _, first, last = SCREEN_VIDEOS["scoreboard"][2][0]
    reader = _Chokes(hub.required.text_reader)
    screen = ScreenReader(reader, ScreenOptions(), video)
    tap = screen.tap()
    consume = tap.consume

    def frame_at(t, frame):  # the reader chokes on the frame at 3 s, inside the caption
        reader.broken = 2.5 <= t < 3.5
        consume(t, frame)

    tap.consume = frame_at
    with caplog.at_level(logging.WARNING):
        decode_pass(video, [tap])
    assert screen.stats.failed == 1
    assert "text reader failed on the frame at 3.0 s" in caplog.text and "the other frames go on" in caplog.text
    moments, _ = screen.result()
    found = [m for m in moments if cer(text, m.text) <= 0.15]
    assert found and min(m.start for m in found) <= first + 1 and max(m.end for m in found) >= last - 1


def test_a_missing_reader_skips_screen_text_and_indexing_goes_on(screen_videos, tmp_path, caplog):
    from models import ModelHub, ModelsConfig, RoleConfig

    hub = ModelHub(ModelsConfig(profile="packaged", cache_dir=tmp_path,
                                roles={"text_reader": RoleConfig(path=str(tmp_path / "no-ocr-here"))}))
    with caplog.at_level(logging.WARNING):
        frames = decode_frames(screen_videos["scoreboard"], hub, KeyframeOptions())
    assert frames.screen == [] and frames.keyframes
    assert "on-screen text is skipped" in caplog.text and "no-ocr-here" in caplog.text


def test_off_and_bad_languages(hub, screen_videos):
    frames = decode_frames(screen_videos["scoreboard"], hub, screen=ScreenOptions(enabled=False))
    assert frames.screen == [] and frames.stats.delivered == {"keyframes": frames.stats.delivered["keyframes"]}
    with pytest.raises(ConfigError, match="screen_languages 'fr'.*reads zh,en"):
        decode_frames(screen_videos["scoreboard"], hub, screen=ScreenOptions(languages=("fr",)))
    # English only: the Chinese notice is dropped.
    notice = decode_frames(screen_videos["notice"], hub, screen=ScreenOptions(languages=("en",)))
    assert notice.screen == []
