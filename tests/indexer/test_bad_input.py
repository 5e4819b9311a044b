"""Bad and odd input: every file gets a correct index entry or a one-line error naming it.

A folder of odd files is made with ffmpeg and Python, then indexed once with the real
``videoqa index`` command and the packaged models; each case is checked against the
report, the catalog, the command's stderr, the CLI summary and the web UI's library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.keyframes import KeyframeOptions, extract_keyframes
from indexer.media import content_id, discover
from tests.conftest import ffmpeg

ROOT = Path(__file__).resolve().parents[2]

UNICODE_NAME = "vidéo 日本語 \"quoted\" it's (1).mp4"
NOT_UTF8_NAME = b"latin1 \xe9t\xe9.mp4"  # a name from an old archive: not valid UTF-8
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# name -> what the report must say: ("indexed", None) or ("failed", words of the one-line reason)
CASES: dict[str, tuple[str, str | None]] = {
    "empty.mp4": ("failed", "the file is empty (0 bytes)"),
    "truncated.mp4": ("failed", "the file is truncated or damaged (moov atom not found)"),
    "truncated_faststart.mp4": ("failed", "the file is truncated or damaged"),
    "no_moov.mp4": ("failed", "the file is truncated or damaged (moov atom not found)"),
    "notes.mp4": ("failed", "not a readable video file (its format is not recognised)"),
    "random.mkv": ("failed", "not a readable video file (its format is not recognised)"),
    "folder.mp4": ("failed", "is a directory, not a video file"),
    "audio_only.mp4": ("failed", "not a video file (no video stream; it has only audio)"),
    "loop_a.mp4": ("failed", "cannot read the file (it is a symbolic link loop)"),
    "loop_b.mp4": ("failed", "cannot read the file (it is a symbolic link loop)"),
    "dangling.mp4": ("failed", "cannot read the file (broken symbolic link to"),
    "pipe.mp4": ("failed", "not a video file (it is a named pipe)"),
    "latin1 \\xe9t\\xe9.mp4": ("failed", "the file name is not valid UTF-8"),
    "no_audio.mp4": ("indexed", None),
    "one_frame.mp4": ("indexed", None),
    "half_second.mp4": ("indexed", None),
    "8k.mp4": ("indexed", None),
    "vfr.mkv": ("indexed", None),
    "rotated.mp4": ("indexed", None),
    "music.mp4": ("indexed", None),
    "silence.mp4": ("indexed", None),
    UNICODE_NAME: ("indexed", None),
}
if not IS_ROOT:  # root reads a chmod 000 file anyway
    CASES["unreadable.mp4"] = ("failed", "cannot read the file (permission denied)")

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "32k"]


def _testsrc(size: str = "160x90", rate: int = 10) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]


def _without_box(data: bytes, kind: bytes) -> bytes:
    """An MP4 file's bytes without its top-level box ``kind``."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == kind:
            return data[:pos] + data[pos + size:]
        pos += size
    raise AssertionError(f"no {kind!r} box")


def make_odd_folder(folder: Path) -> Path:
    """Every odd case of the issue, made with ffmpeg and Python (tiny and short)."""
    folder.mkdir(parents=True, exist_ok=True)
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
    work = folder.parent / (folder.name + "-work")
    work.mkdir(exist_ok=True)
    # A normal MP4 (index at the end) and a web one (index first), 3 s with sound.
    ffmpeg(*_testsrc(), *tone, "-t", "3", *X264, "-g", "10", *AAC, str(work / "normal.mp4"))
    ffmpeg(*_testsrc(), *tone, "-t", "3", *X264, "-g", "10", *AAC, "-movflags", "+faststart",
           str(work / "faststart.mp4"))
    normal, faststart = (work / "normal.mp4").read_bytes(), (work / "faststart.mp4").read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(normal[: len(normal) // 3])
    (folder / "truncated_faststart.mp4").write_bytes(faststart[: len(faststart) // 3])
    (folder / "no_moov.mp4").write_bytes(_without_box(normal, b"moov"))
    (folder / "notes.mp4").write_text("These are my notes, not a video.\n" * 40)
    (folder / "random.mkv").write_bytes(np.random.default_rng(7).bytes(64 * 1024))
    (folder / "folder.mp4").mkdir()
    ffmpeg(*_testsrc(), "-t", "2", *X264, str(folder / "no_audio.mp4"))
    ffmpeg(*tone, "-t", "2", *AAC, str(folder / "audio_only.mp4"))
    ffmpeg(*_testsrc(), "-frames:v", "1", *X264, str(folder / "one_frame.mp4"))
    ffmpeg(*_testsrc(rate=25), *tone, "-t", "0.5", *X264, *AAC, str(folder / "half_second.mp4"))
    ffmpeg(*_testsrc("7680x4320", 4), "-t", "0.5", *X264, str(folder / "8k.mp4"))
    # Variable frame rate: bursts of frames with gaps (the timestamps keep the gaps).
    ffmpeg(*_testsrc(rate=25), *tone, "-t", "3", "-vf", "select='lt(mod(n\\,25)\\,6)+between(n\\,50\\,75)'",
           "-vsync", "vfr", *X264, *AAC, str(folder / "vfr.mkv"))
    # A phone video: a 1280x720 stream with a display rotation of 90 degrees (ffmpeg 5 sets it on copy).
    ffmpeg(*_testsrc("1280x720"), "-t", "1", *X264, "-g", "5", str(work / "landscape.mp4"))
    ffmpeg("-i", str(work / "landscape.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(folder / "rotated.mp4"))
    music = ("aevalsrc='0.3*sin(2*PI*(220+55*floor(mod(2*t\\,4)))*t)*(0.6+0.4*sin(2*PI*4*t))"
             "+0.15*sin(2*PI*330*t)+0.1*sin(2*PI*440*t)':s=16000:d=4")
    ffmpeg(*_testsrc(), "-f", "lavfi", "-i", music, "-t", "4", *X264, *AAC, str(folder / "music.mp4"))
    ffmpeg(*_testsrc(), "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", *X264, *AAC,
           str(folder / "silence.mp4"))
    ffmpeg(*_testsrc("96x54"), "-t", "1", *X264, str(folder / UNICODE_NAME))
    (folder / "loop_a.mp4").symlink_to("loop_b.mp4")
    (folder / "loop_b.mp4").symlink_to("loop_a.mp4")
    (folder / "dangling.mp4").symlink_to("gone/away.mp4")
    (folder / "cycle").symlink_to(".")  # a folder that contains itself
    os.mkfifo(folder / "pipe.mp4")  # reading it would wait forever for a writer
    with open(os.path.join(os.fsencode(folder), NOT_UTF8_NAME), "wb") as fh:
        fh.write((folder / "one_frame.mp4").read_bytes())
    if not IS_ROOT:
        (folder / "unreadable.mp4").write_bytes((folder / "no_audio.mp4").read_bytes())
        (folder / "unreadable.mp4").chmod(0)
    return folder


def _env(settings_env: dict[str, str], index_dir: Path) -> dict[str, str]:
    env = {**os.environ, **settings_env, "VIDEOQA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("VIDEOQA_SHARED_MEDIA", None)
    return env


def _videoqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def odd(tmp_path_factory, settings_env):
    """The odd folder indexed once by ``videoqa index --json``: (folder, index dir, process, {name: file})."""
    base = tmp_path_factory.mktemp("odd")
    folder = make_odd_folder(base / "odd videos")
    index_dir = base / "index"
    proc = _videoqa(_env(settings_env, index_dir), "index", str(folder), "--json", "--no-progress")
    report = json.loads(proc.stdout)
    files = {Path(f["path"]).name: f for f in report["files"]}
    return folder, index_dir, proc, files


@pytest.mark.slow
def test_the_batch_goes_on_and_exits_non_zero(odd):
    _, _, proc, files = odd
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(files) == sorted(CASES)  # every case was looked at, each once


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_is_indexed_or_fails_in_one_plain_line(odd, name):
    _, _, proc, files = odd
    status, words = CASES[name]
    result = files[name]
    assert result["status"] == status, result
    if status == "failed":
        assert words in result["reason"] and "\n" not in result["reason"], result
        assert "Errno" not in result["reason"] and "Error:" not in result["reason"], result  # plain words
        # One warning line on stderr names the file and the problem.
        lines = [line for line in proc.stderr.splitlines() if result["path"] in line]
        assert len(lines) == 1 and lines[0].endswith(f"{result['path']}: {result['reason']}"), lines
    else:
        assert result["keyframes"] >= 1 and result["reason"] == ""


@pytest.mark.slow
def test_failures_are_kept_in_the_catalog_and_indexed_files_are_right(odd):
    folder, index_dir, _, files = odd
    with Catalog(index_dir, readonly=True) as catalog:
        failures = {Path(f["path"]).name: f for f in catalog.failures()}
        videos = {v.name: v for v in catalog.videos()}
        assert sorted(failures) == sorted(n for n, (s, _) in CASES.items() if s == "failed")
        for name, f in failures.items():
            assert f["error"] == files[name]["reason"] and f["stage"] == files[name]["stage"]
        assert sorted(videos) == sorted(n for n, (s, _) in CASES.items() if s == "indexed")
        for name, video in videos.items():
            assert video.path == str(folder / name) and catalog.keyframes_of(video.id), name
            assert video.content_id == content_id(folder / name)

        big = videos["8k.mp4"]
        assert (big.width, big.height) == (7680, 4320)
        assert all(k.width <= 320 for k in catalog.keyframes_of(big.id))  # keyframes are downscaled

        phone = videos["rotated.mp4"]
        assert (phone.width, phone.height) == (720, 1280)  # the size as shown
        for k in catalog.keyframes_of(phone.id):
            jpeg = cv2.imdecode(np.frombuffer(catalog.keyframe_jpeg(k.id), np.uint8), cv2.IMREAD_COLOR)
            assert jpeg.shape[0] > jpeg.shape[1] and (jpeg.shape[1], jpeg.shape[0]) == (k.width, k.height)

        for name in ("vfr.mkv", "half_second.mp4", "one_frame.mp4"):
            video = videos[name]
            times = [k.t for k in catalog.keyframes_of(video.id)]
            # The first frame's own time: the mkv's video stream starts 64 ms in (PyAV gives frame times).
            assert times[0] == pytest.approx(0.0, abs=0.1) and times == sorted(times)
            assert all(t <= video.duration + 0.05 for t in times), (name, times, video.duration)
        assert videos["one_frame.mp4"].duration < 0.5

        # Sound without speech gives no moments (Whisper must not invent words over music or silence).
        for name in ("music.mp4", "silence.mp4", "no_audio.mp4"):
            assert catalog.moments_of(videos[name].id) == [], name
        assert not videos["no_audio.mp4"].has_audio and videos["silence.mp4"].has_audio


@pytest.mark.slow
def test_cli_summary_and_library_show_the_failures(odd, settings_env):
    folder, index_dir, _, files = odd
    env = _env(settings_env, index_dir)
    again = _videoqa(env, "index", str(folder), "--no-progress")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    failed = [n for n, (s, _) in CASES.items() if s == "failed"]
    for name in failed:
        row = next(line for line in again.stdout.splitlines() if line.startswith(name + " "))
        assert " failed " in row and files[name]["reason"] in row, row
    indexed = len(CASES) - len(failed)
    assert f"0 indexed, {indexed} skipped, {len(failed)} failed" in again.stdout
    assert "Nothing changed: no model was loaded." not in again.stdout  # failures are tried again

    library = _videoqa(env, "library")
    assert library.returncode == 0
    for name in failed:
        assert any(line.startswith("FAILED ") and name in line and files[name]["reason"] in line
                   for line in library.stdout.splitlines()), name
    assert f"{indexed} videos indexed, {len(failed)} failed" in library.stdout

    from app import VideoQA, load_settings
    from app.web.render import library_html

    lib = VideoQA(load_settings(env={**settings_env, "VIDEOQA_INDEX_DIR": str(index_dir)})).library()
    page = library_html(lib, "en", lambda video_id: None, folder)
    import html

    for name in failed:
        assert html.escape(name) in page and html.escape(files[name]["reason"]) in page, name
    assert page.count("class='vq-failed'") == len(failed)


@pytest.mark.slow
@pytest.mark.parametrize("max_key_gap", [2.0, 0.0], ids=["key-frames-only", "decoded-frames"])
def test_rotated_phone_video_thumbnails_are_upright(odd, max_key_gap, tmp_path):
    """Both keyframe paths show the frame as a player does (ffmpeg applies the rotation when decoding)."""
    folder = odd[0]
    video = folder / "rotated.mp4"
    shown = tmp_path / "shown.png"
    ffmpeg("-i", str(video), "-frames:v", "1", str(shown))
    reference = cv2.imread(str(shown))
    assert reference.shape[:2] == (1280, 720)
    first = extract_keyframes(video, KeyframeOptions(max_key_gap=max_key_gap))[0]
    thumb = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape[:2] == (first.height, first.width) and first.height > first.width
    assert first.width == 320  # thumb_width is the width as shown, on both paths
    small = cv2.resize(reference, (thumb.shape[1], thumb.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(float) - thumb).mean() < 12


@pytest.mark.slow
def test_8k_keyframes_on_the_decoding_path(odd):
    frames = extract_keyframes(odd[0] / "8k.mp4", KeyframeOptions(max_key_gap=0))
    assert frames and all(k.width == 320 and k.height == 180 for k in frames)


def test_discovery_survives_loops_links_and_pipes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "clip.mp4").write_bytes(b"x")
    (tmp_path / "sub" / "up").symlink_to("..")  # a loop through a parent
    (tmp_path / "self").symlink_to(".")
    (tmp_path / "a.mp4").symlink_to("b.mp4")
    (tmp_path / "b.mp4").symlink_to("a.mp4")
    os.mkfifo(tmp_path / "pipe.mkv")
    names = sorted(p.name for p in discover([tmp_path]))
    assert names == ["a.mp4", "b.mp4", "clip.mp4", "pipe.mkv"]  # each once; the indexer says why it fails


@pytest.mark.slow
def test_a_file_that_changes_while_indexed_is_not_stored(hub, tmp_path):
    """A recording still being written: the first run refuses it, the run after it is complete indexes it."""
    from indexer.writer import Indexer

    for role in ("voice_activity", "transcriber", "text_reader"):  # loaded first: the writer must outlast the run
        hub.require(role).load()
    folder = tmp_path / "recordings"
    folder.mkdir()
    video = folder / "live.ts"
    # In real time, every packet written at once (a write every few tens of milliseconds); indexing
    # the first seconds takes longer than that (hashing, probing, keyframes, audio, voice detection).
    writer = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-re", *_testsrc(rate=25), "-f", "lavfi", "-i",
         "sine=frequency=300:sample_rate=16000", "-t", "7", *X264, "-g", "25", *AAC, "-flush_packets", "1",
         "-f", "mpegts", str(video)])
    try:
        started = time.monotonic()
        while not (video.exists() and time.monotonic() - started > 2.5) and time.monotonic() - started < 30:
            time.sleep(0.05)
        assert writer.poll() is None, "ffmpeg finished before the test could index a growing file"
        report = Indexer(tmp_path / "index", hub).index([folder])
        still_writing = writer.poll() is None
    finally:
        writer.wait(timeout=60)
    (result,) = report.results
    assert still_writing and result.status == "failed", result
    assert result.reason.startswith("the file changed while it was being indexed (it grew from ")
    assert result.reason.endswith("; index it again once it is complete")
    with Catalog(tmp_path / "index", readonly=True) as catalog:
        assert catalog.count_videos() == 0 and catalog.stats()["moments"] == 0  # nothing of it was stored
        assert [f["path"] for f in catalog.failures()] == [str(video)]

    report = Indexer(tmp_path / "index", hub).index([folder])  # complete now
    assert [r.status for r in report.results] == ["indexed"]
    with Catalog(tmp_path / "index", readonly=True) as catalog:
        (stored,) = catalog.videos()
        assert stored.content_id == content_id(video) and stored.size == video.stat().st_size
        assert catalog.failures() == []


@pytest.mark.slow
def test_real_soundtracks_without_speech_give_no_moments(shared_media, hub, tmp_path):
    """Music and effects (Big Buck Bunny, a silent film's score): no words are invented."""
    from indexer.writer import Indexer

    folder = tmp_path / "soundtracks"
    folder.mkdir()
    for source, name in (("animation_big-buck-bunny_0-30s.webm", "cartoon.mp4"),
                         ("silentfilm_chaplin_bw.mp4", "silent_film.mp4")):
        ffmpeg("-i", str(shared_media / "video" / source), "-t", "10", "-vf", "scale=160:-2", *X264, *AAC,
               str(folder / name))
    report = Indexer(tmp_path / "index", hub).index([folder])
    assert [(Path(r.path).name, r.status, r.moments) for r in report.results] == [
        ("cartoon.mp4", "indexed", 0), ("silent_film.mp4", "indexed", 0)]
