#!/usr/bin/env python3
"""Generate the project's own sample videos and their ground truth.

This script makes four short narrated videos (640x360, H.264 + AAC mono, 15-25 s
each) and ``ground_truth.json`` in the folder that holds this script. They are
small, licence-free inputs for the demo, the tests and quick benchmarks: every
pixel comes from an ffmpeg lavfi generator and every word from espeak-ng, so
nothing third-party is involved.

Each video is built so its ground truth is known exactly:

* Narration: two to three English sentences spoken by espeak-ng (voice en-us,
  150 words per minute), each synthesised on its own. The first starts after
  1.5 s of silence and the sentences are 2.5 s apart, so voice-activity
  detection and transcription segments can be checked against known times.
  Every sentence uses topical keywords that no other video uses (lava and
  magma, dough and yeast, ...), so retrieval tests have one right answer.
* Picture: one generated scene per sentence (plus, for some videos, an end
  card), joined with hard cuts. Cuts fall in the silent gaps between sentences
  on whole-frame times, and consecutive scenes differ strongly in brightness,
  so a keyframe detector should find every cut and nothing else. Nothing flashes.
* A caption with the video's title (drawtext), when this ffmpeg build has a
  working drawtext filter; otherwise the videos are made without captions.

Run it from anywhere: ``python3 sample_media/make_samples.py``. It overwrites
the videos and ``ground_truth.json`` every time. Output is byte-for-byte
repeatable with the same ffmpeg and espeak-ng versions (bit-exact muxing, no
timestamps in metadata, a fixed encoder thread count).

Requires only the Python standard library and the ``ffmpeg``, ``ffprobe`` and
``espeak-ng`` command-line tools.
"""

from __future__ import annotations

import array
import json
import math
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent

WIDTH, HEIGHT, FPS = 640, 360, 25
VOICE, WORDS_PER_MINUTE = "en-us", 150
LEAD_IN_S = 1.5  # silence before the first sentence
GAP_S = 2.5  # silence between the end of one sentence and the start of the next
TAIL_S = 2.0  # silence after the last sentence (before any end card)
END_CARD_S = 2.0  # length of the optional end-card scene after the tail
MIN_DURATION_S, MAX_DURATION_S = 15.0, 25.0
AUDIO_RATE = 22050  # espeak-ng's native rate; kept to avoid resampling the speech
# Samples quieter than this (of 32767) at the start and end of a synthesised
# sentence count as silence and are trimmed, so the ground-truth times hug the speech.
SILENCE_THRESHOLD = 300
TRIM_MARGIN_S = 0.02
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
)


@dataclass(frozen=True)
class Scene:
    """One generated picture: a label for the ground truth and an ffmpeg source graph."""

    label: str
    # A filtergraph fragment producing WIDTH x HEIGHT video at FPS with a single
    # unlabelled output; it may contain ';' and internal labels.
    graph: str


@dataclass(frozen=True)
class SampleVideo:
    file_name: str
    title: str
    keywords: tuple[str, ...]
    sentences: tuple[str, ...]
    scenes: tuple[Scene, ...]  # one per sentence, optionally plus an end card

    @property
    def has_end_card(self) -> bool:
        return len(self.scenes) == len(self.sentences) + 1


_S = f"s={WIDTH}x{HEIGHT}:r={FPS}"


def _moving_box(background: str, box: str, size: int, y: int, speed: int) -> str:
    """A plain background with a square gliding slowly left to right."""
    return (
        f"color=c={background}:{_S}[bg];color=c={box}:s={size}x{size}:r={FPS}[fg];"
        f"[bg][fg]overlay=x='40+t*{speed}':y={y}:shortest=1"
    )


def _blocky(source: str, factor: int = 4) -> str:
    """Render a busy pattern at low resolution and enlarge it: cheaper to encode."""
    return (
        f"{source}:s={WIDTH // factor}x{HEIGHT // factor}:r={FPS},"
        f"scale={WIDTH}:{HEIGHT}:flags=neighbor"
    )


END_CARD = Scene("end card (plain dark grey)", f"color=c=0x202020:{_S}")

VIDEOS: tuple[SampleVideo, ...] = (
    SampleVideo(
        file_name="volcano_lecture.mp4",
        title="Volcanoes - a short lecture",
        keywords=("volcano", "magma", "lava", "eruption", "ash"),
        sentences=(
            "Deep under every volcano, there is a chamber full of hot magma.",
            "During an eruption, red lava flows down the slopes and ash fills the sky.",
            "Scientists watch each volcano closely to warn the people nearby.",
        ),
        scenes=(
            Scene(
                "gradients (dark red and orange)",
                f"gradients={_S}:c0=0x3a0a00:c1=0xff7a00:c2=0x7a1c00:n=3:speed=0.01:seed=7",
            ),
            Scene("mandelbrot (slow zoom)", f"mandelbrot={_S}:end_pts=2000"),
            Scene(
                "cellauto (rule 110, scrolling, enlarged)",
                _blocky("cellauto=rule=110:seed=3:ratio=0.5"),
            ),
        ),
    ),
    SampleVideo(
        file_name="bread_baking.mp4",
        title="Baking bread at home",
        keywords=("bread", "flour", "yeast", "dough", "oven", "loaf"),
        sentences=(
            "Mix flour, water, salt and yeast into a soft dough to make your bread.",
            "Press and fold the dough for ten minutes, then leave it to rise.",
            "Put the loaf in the oven until the top turns golden brown.",
        ),
        scenes=(
            Scene(
                "moving brown square on a wheat-coloured background",
                _moving_box("0xd8b070", "0x6b3e1e", 110, 180, 60),
            ),
            Scene("colorspectrum", f"colorspectrum={_S}:type=all"),
            Scene("testsrc2", f"testsrc2={_S}"),
            END_CARD,
        ),
    ),
    SampleVideo(
        file_name="bicycle_repair.mp4",
        title="Fixing a flat bicycle tire",
        keywords=("bicycle", "tire", "wheel", "tube", "patch", "pump", "chain", "brakes"),
        sentences=(
            "To fix a flat tire, first take the wheel off the bicycle frame.",
            "Find the hole in the inner tube and cover it with a rubber patch.",
            "Last, pump up the tire, clean the chain, and test the brakes.",
        ),
        scenes=(
            Scene("smptehdbars", f"smptehdbars={_S}"),
            Scene(
                "moving grey square on a dark green background",
                _moving_box("0x16302a", "0xb0b0b0", 90, 150, 80),
            ),
            Scene(
                "gradients (circular, silver and black)",
                f"gradients={_S}:c0=0x101010:c1=0xd0d0d0:c2=0x505050:n=3:speed=0.01:seed=5"
                ":type=circular",
            ),
        ),
    ),
    SampleVideo(
        file_name="solar_system.mp4",
        title="Our solar system",
        keywords=("solar system", "planets", "orbit", "sun", "Jupiter", "Saturn", "rings",
                  "Earth", "moon"),
        sentences=(
            "There are eight planets in the solar system, and they all orbit the sun.",
            "Jupiter is the largest planet, and Saturn is the one with rings.",
            "Earth is the third planet from the sun, and it has one moon.",
        ),
        scenes=(
            Scene(
                "moving yellow square on a black background",
                _moving_box("0x000010", "0xffd040", 120, 120, 50),
            ),
            Scene(
                "gradients (spiral, pale blue and violet)",
                f"gradients={_S}:c0=0xa0c8ff:c1=0xe0d0ff:c2=0x7060c0:n=3:speed=0.01:seed=11"
                ":type=spiral",
            ),
            Scene("testsrc (classic test pattern)", f"testsrc={_S}"),
            END_CARD,
        ),
    ),
)


# --------------------------------------------------------------------------- tools


def require_tools() -> None:
    missing = [t for t in ("ffmpeg", "ffprobe", "espeak-ng") if shutil.which(t) is None]
    if missing:
        sys.exit(
            "make_samples.py: missing command-line tool(s): "
            + ", ".join(missing)
            + ".\nInstall them first, e.g. on Debian/Ubuntu: sudo apt-get install ffmpeg espeak-ng"
        )


def run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"make_samples.py: command failed ({result.returncode}): {' '.join(cmd)}\n"
                 f"{result.stderr}")
    return result.stdout


def tool_versions() -> dict[str, str]:
    ffmpeg = run(["ffmpeg", "-hide_banner", "-version"]).splitlines()[0]
    espeak = run(["espeak-ng", "--version"]).strip()
    return {
        "ffmpeg": ffmpeg.split(" Copyright")[0].removeprefix("ffmpeg version ").strip(),
        "espeak-ng": espeak.split(" Data at")[0].removeprefix("eSpeak NG text-to-speech:").strip(),
    }


def find_font() -> str | None:
    return next((f for f in FONT_CANDIDATES if Path(f).is_file()), None)


def drawtext_filter(title: str) -> str | None:
    """A drawtext caption for the title, or None when this ffmpeg cannot draw text."""
    text = title.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:").replace("%", "\\%")
    font = find_font()
    font_opt = f"fontfile='{font}':" if font else ""
    filt = (
        f"drawtext={font_opt}text='{text}':fontsize=28:fontcolor=white:"
        "box=1:boxcolor=black@0.6:boxborderw=10:x=(w-text_w)/2:y=24"
    )
    probe = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c=gray:{_S}:d=0.2",
         "-vf", filt, "-f", "null", "-"],
        capture_output=True, text=True,
    )
    return filt if probe.returncode == 0 else None


def probe_duration(path: Path) -> float:
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
               "-of", "default=noprint_wrappers=1:nokey=1", str(path)])
    return float(out.strip())


# --------------------------------------------------------------------------- audio


def synthesise(sentence: str, wav_path: Path) -> array.array:
    """Speak one sentence with espeak-ng; return its samples with edge silence trimmed."""
    run(["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav_path), sentence])
    with wave.open(str(wav_path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, AUDIO_RATE):
            sys.exit(f"make_samples.py: unexpected espeak-ng WAV format: {w.getparams()}")
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    loud = [i for i, s in enumerate(samples) if abs(s) > SILENCE_THRESHOLD]
    if not loud:
        sys.exit(f"make_samples.py: espeak-ng produced silence for: {sentence!r}")
    margin = int(TRIM_MARGIN_S * AUDIO_RATE)
    return samples[max(0, loud[0] - margin): min(len(samples), loud[-1] + 1 + margin)]


def to_sample(t: float) -> int:
    return int(round(t * AUDIO_RATE))


def frame_time(t: float, up: bool = False) -> float:
    """Round a time to a multiple of five frames (0.2 s at 25 fps)."""
    step = 5 / FPS
    n = math.ceil(t / step - 1e-9) if up else round(t / step)
    return round(n * step, 3)


def build_narration(video: SampleVideo, work: Path):
    """Lay the sentences out on a timeline and write the full narration WAV.

    Returns (wav path, total duration, sentence timings, cut times).
    """
    clips = [synthesise(s, work / f"sentence{i}.wav") for i, s in enumerate(video.sentences)]
    timings = []
    start = to_sample(LEAD_IN_S)
    for text, clip in zip(video.sentences, clips):
        end = start + len(clip)
        timings.append({"text": text, "start": round(start / AUDIO_RATE, 3),
                        "end": round(end / AUDIO_RATE, 3), "_start_sample": start})
        start = end + to_sample(GAP_S)

    # Cuts sit in the middle of each gap between sentences, on whole frames.
    cuts = [frame_time((a["end"] + b["start"]) / 2) for a, b in zip(timings, timings[1:])]
    speech_end = timings[-1]["end"] + TAIL_S
    if video.has_end_card:
        cuts.append(frame_time(speech_end, up=True))
        duration = cuts[-1] + END_CARD_S
    else:
        duration = frame_time(speech_end, up=True)
    duration = max(duration, MIN_DURATION_S)
    if duration > MAX_DURATION_S:
        sys.exit(f"make_samples.py: {video.file_name} would last {duration:.1f} s "
                 f"(> {MAX_DURATION_S} s); shorten its sentences.")

    track = array.array("h", bytes(2 * to_sample(duration)))
    for t, clip in zip(timings, clips):
        s0 = t.pop("_start_sample")
        track[s0:s0 + len(clip)] = clip
    if sys.byteorder == "big":
        track.byteswap()
    wav_path = work / "narration.wav"
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes(track.tobytes())
    return wav_path, duration, timings, cuts


# --------------------------------------------------------------------------- video


def encode(video: SampleVideo, wav: Path, duration: float, cuts: list[float],
           caption: str | None, out_path: Path) -> None:
    bounds = [0.0, *cuts, duration]
    parts, labels = [], []
    for i, (scene, a, b) in enumerate(zip(video.scenes, bounds, bounds[1:])):
        parts.append(f"{scene.graph},trim=duration={b - a:.3f},setpts=PTS-STARTPTS,"
                     f"setsar=1,format=yuv420p[s{i}]")
        labels.append(f"[s{i}]")
    tail = f",{caption}" if caption else ""
    parts.append(f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0{tail},format=yuv420p[v]")
    run([
        "ffmpeg", "-v", "error", "-y",
        "-filter_complex", ";".join(parts),
        "-i", str(wav),
        "-map", "[v]", "-map", "0:a",
        "-t", f"{duration:.3f}",
        "-c:v", "libx264", "-preset", "medium", "-crf", "30", "-pix_fmt", "yuv420p",
        "-threads", "2", "-r", str(FPS),
        "-c:a", "aac", "-b:a", "48k", "-ac", "1", "-ar", str(AUDIO_RATE),
        "-movflags", "+faststart", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        str(out_path),
    ])


# --------------------------------------------------------------------------- main


def main() -> None:
    require_tools()
    caption_probe = {v.file_name: drawtext_filter(v.title) for v in VIDEOS}
    captions_ok = all(caption_probe.values())
    if not captions_ok:
        print("note: drawtext does not work in this ffmpeg build; making videos without captions")

    entries = []
    with tempfile.TemporaryDirectory(prefix="videoqa_samples_") as tmp:
        for video in VIDEOS:
            work = Path(tmp) / video.file_name.removesuffix(".mp4")
            work.mkdir()
            wav, duration, timings, cuts = build_narration(video, work)
            out_path = OUT_DIR / video.file_name
            encode(video, wav, duration, cuts,
                   caption_probe[video.file_name] if captions_ok else None, out_path)
            bounds = [0.0, *cuts, duration]
            entries.append({
                "file": video.file_name,
                "title": video.title,
                "caption": video.title if captions_ok else None,
                "duration": round(probe_duration(out_path), 3),
                "keywords": list(video.keywords),
                "narration": timings,
                "scene_changes": cuts,
                "scenes": [{"start": a, "end": round(b, 3), "source": s.label}
                           for s, a, b in zip(video.scenes, bounds, bounds[1:])],
            })
            print(f"{video.file_name}: {entries[-1]['duration']:.2f} s, "
                  f"{out_path.stat().st_size / 1024:.0f} KiB")

    truth = {
        "generator": "sample_media/make_samples.py",
        "tools": tool_versions(),
        "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "codec": "h264",
                  "audio": f"aac mono {AUDIO_RATE} Hz"},
        "narration_voice": {"engine": "espeak-ng", "voice": VOICE,
                            "words_per_minute": WORDS_PER_MINUTE},
        "notes": ("Times are in seconds from the start of the file. A sentence's start/end are "
                  "where its synthesised audio (edge silence trimmed) was placed. "
                  "scene_changes are the hard cuts between the generated scenes."),
        "videos": entries,
    }
    (OUT_DIR / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {OUT_DIR / 'ground_truth.json'}")


if __name__ == "__main__":
    main()
