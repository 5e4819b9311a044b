import cv2
import numpy as np
import pytest

from indexer.keyframes import KeyframeOptions, extract_keyframes

CUTS = [1.2, 3.04, 5.48, 7.48, 9.68]  # SOURCES.md: scene boundaries of scenecuts_bikes_street.mp4


def test_scene_cuts_are_found(shared_media):
    frames = extract_keyframes(shared_media / "video" / "scenecuts_bikes_street.mp4")
    times = [k.t for k in frames]
    assert times[0] == pytest.approx(0.0, abs=0.05)  # the first frame is always kept
    for cut in CUTS:
        assert min(abs(t - cut) for t in times) <= 0.55, (cut, times)
    assert times == sorted(times)
    assert all(b - a >= KeyframeOptions().min_gap - 1e-6 for a, b in zip(times, times[1:]))


def test_thumbnails_are_small_jpegs(shared_media):
    frames = extract_keyframes(shared_media / "video" / "animation_big-buck-bunny_0-30s.webm")
    for k in frames:
        img = cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] == k.width <= 320 and img.shape[0] == k.height


def test_max_keyframes_keeps_first_and_largest(shared_media):
    opts = KeyframeOptions(max_keyframes=3, threshold=1.0, min_gap=0.5)
    frames = extract_keyframes(shared_media / "video" / "scenecuts_bikes_street.mp4", opts)
    assert len(frames) == 3 and frames[0].t == pytest.approx(0.0, abs=0.05)


def test_rotation_flag_gives_upright_thumbnails(shared_media):
    # homevideo_woodstove-dog.mp4 is stored upside down with a 180-degree display matrix:
    # the thumbnail must match the frame as displayed, i.e. the stored frame turned around.
    import av

    path = shared_media / "video" / "homevideo_woodstove-dog.mp4"
    with av.open(str(path)) as c:
        raw = next(c.decode(video=0)).to_ndarray(format="bgr24")
    thumb = cv2.imdecode(np.frombuffer(extract_keyframes(path)[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    small = lambda im: cv2.resize(im, (thumb.shape[1], thumb.shape[0]), interpolation=cv2.INTER_AREA).astype(float)
    upright = np.abs(small(cv2.rotate(raw, cv2.ROTATE_180)) - thumb).mean()
    stored = np.abs(small(raw) - thumb).mean()
    assert upright < stored / 2, (upright, stored)


def test_short_gops_decode_key_frames_only(shared_media, tmp_path):
    """With key frames at most 2 s apart only they are decoded; they fall on the cuts (x264 scenecut)."""
    import subprocess

    from indexer.decode import FrameTap, decode_pass, key_frame_times

    video = tmp_path / "bikes_gop25.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(shared_media / "video" /
                    "scenecuts_bikes_street.mp4"), "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
                    "-pix_fmt", "yuv420p", str(video)], check=True)
    key_times, _ = key_frame_times(video)
    assert key_times[0] == pytest.approx(0.0)
    for cut in CUTS:  # the encoder starts a GOP at every cut
        assert min(abs(t - cut) for t in key_times) < 0.05, (cut, key_times)
    seen: list[float] = []
    stats = decode_pass(video, [FrameTap("keys", 2.0, lambda t, frame: seen.append(t), key_frames_gap=2.0)])
    assert stats.mode == "key frames" and stats.decoded == len(key_times)
    assert seen == pytest.approx(key_times, abs=1e-3)
    frames = extract_keyframes(video)
    assert {round(k.t, 3) for k in frames} <= {round(t, 3) for t in seen}
    assert len(frames) >= len(CUTS)
    # The shared file has one GOP of 250 frames: no fast path, the same result as with it off.
    long_gop = shared_media / "video" / "scenecuts_bikes_street.mp4"
    stats = decode_pass(long_gop, [FrameTap("keys", 2.0, lambda t, frame: None, key_frames_gap=2.0)])
    assert stats.mode == "reference frames" and stats.delivered["keys"] >= 19  # 2 per second of 10 s
    assert [k.t for k in extract_keyframes(long_gop)] == \
        [k.t for k in extract_keyframes(long_gop, KeyframeOptions(max_key_gap=0))]
