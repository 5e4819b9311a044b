"""The text reader (PP-OCRv4 mobile through rapidocr-onnxruntime, weights from its wheel) on real frames."""

import numpy as np
import pytest

from models.types import TextReader
from tests.conftest import SCREEN_VIDEOS, cer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(hub):
    reader = hub.required.text_reader
    reader.load()
    return reader


def _frame(video, t):
    import av

    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time >= t:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame at {t} s in {video}")


def test_it_is_a_text_reader_found_in_its_wheel(reader):
    assert isinstance(reader, TextReader)
    assert reader.location.source == "packaged wheel rapidocr-onnxruntime"
    assert set(reader.languages) == {"zh", "en"}


@pytest.mark.parametrize("key", ["scoreboard", "notice"])
def test_reads_english_and_chinese_off_real_footage(reader, screen_videos, key):
    text, _, first, last = SCREEN_VIDEOS[key][2][0]
    frame = _frame(screen_videos[key], (first + last) / 2)
    lines = reader.read(frame)
    best = min(lines, key=lambda line: cer(text, line.text))
    assert cer(text, best.text) <= 0.15, [line.text for line in lines]
    assert best.confidence > 0.8
    x0, y0, x1, y1 = best.bounds  # the caption is centred, 78 % down the 1280x720 frame
    assert x0 < 640 < x1 and y0 < 0.78 * 720 + 60 < y1 + 30
    # Reading only the detected boxes gives the same lines.
    assert [line.text for line in reader.read(frame, reader.detect(frame))] == [line.text for line in lines]


def test_a_frame_without_text_gives_no_lines(reader, screen_videos):
    assert reader.read(_frame(screen_videos["notice"], 1.0)) == []


def test_a_bad_image_is_a_clear_error(reader):
    with pytest.raises(ValueError, match="BGR uint8"):
        reader.read(np.zeros((10, 10), np.float32))
