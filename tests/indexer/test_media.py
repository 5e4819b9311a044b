import numpy as np
import pytest

from indexer.media import content_id, decode_audio, discover, probe
from models.errors import MediaError


def test_probe_real_video(shared_media):
    info = probe(shared_media / "video" / "scenecuts_bikes_street.mp4")
    assert (info.width, info.height) == (640, 272)
    assert info.duration == pytest.approx(10.0, abs=0.1)
    assert info.fps == pytest.approx(25.0)


def test_video_without_audio_is_normal(shared_media):
    path = shared_media / "video" / "talkinghead_carphone_noaudio.mp4"
    assert not probe(path).has_audio
    audio = decode_audio(path)
    assert audio.dtype == np.float32 and audio.size == 0


def test_audio_is_16k_mono(shared_media):
    audio = decode_audio(shared_media / "audio" / "en_jfk_inaugural_ask-not.flac")  # 44.1 kHz stereo
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert audio.size / 16000 == pytest.approx(11.0, abs=0.05)


@pytest.mark.parametrize("name, content, problem", [
    ("empty.mp4", b"", "empty"),
    ("notes.mp4", b"this is a text file, not a video\n" * 10, "not a readable video"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError) as err:
        probe(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_directory_named_like_a_video(tmp_path):
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(MediaError, match="directory"):
        probe(tmp_path / "folder.mp4")


def test_content_id_follows_the_bytes(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"1234" * 1000)
    b.write_bytes(b"1234" * 1000)
    assert content_id(a) == content_id(b)
    b.write_bytes(b"1235" * 1000)
    assert content_id(a) != content_id(b)


def test_discover_walks_folders_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "sub" / "b.MKV").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.mp4").write_bytes(b"x")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)  # a symlink loop is not followed forever
    found = list(discover([tmp_path, tmp_path / "a.mp4"]))
    names = sorted(p.name for p in found)
    assert names == ["a.mp4", "b.MKV"]
