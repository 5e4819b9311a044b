"""The multilingual evaluation library: Chinese, French and German speech over real footage.

    python benchmarks/eval/build_multilingual.py /tmp/videoqa-ml-library [--media ../shared/media]
    videoqa index /tmp/videoqa-ml-library --index-dir /tmp/videoqa-ml-index
    videoqa eval benchmarks/eval/questions_multilingual.jsonl --index-dir /tmp/videoqa-ml-index

Six videos are composed with ffmpeg (recordings from ../shared/media/audio, read in place, laid
1 s into looped footage from ../shared/media/video): three Mandarin clips, the French clip,
the German half of the English-German recording alone, and the whole English-German one.
The 19 English videos of the main evaluation library can be linked beside them as
distractors with ``--with /tmp/videoqa-eval-library``. Gold spans in
``questions_multilingual.jsonl`` are the recordings' ground truth (SOURCES.md) shifted by 1 s.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
OFFSET = 1.0
FOOTAGE = "talkinghead_carphone_noaudio.mp4"
# video name: (recording, start in the recording, seconds of it)
VIDEOS = {
    "zh_aishell.mp4": ("zh_aishell_BAC009S0724W0121.wav", 0.0, None),
    "zh_funasr.mp4": ("zh_funasr_binhai-xinqu.wav", 0.0, None),
    "zh_paobu.mp4": ("zh_paddlespeech_paobu.wav", 0.0, None),
    "fr_bonjour.mp4": ("fr_bonjour_vous_allez_bien.mp3", 0.0, None),
    "de_license.mp4": ("en-de_mit-license_multilingual.mp3", 30.5, 15.5),
    "en_de_license.mp4": ("en-de_mit-license_multilingual.mp3", 0.0, None),
}


def _duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def build(folder: Path, media: Path, distractors: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve().is_relative_to(ROOT):
        raise SystemExit("make the library outside the repository")
    for name, (recording, start, seconds) in VIDEOS.items():
        out = folder / name
        if out.exists():
            continue
        audio = media / "audio" / recording
        length = (seconds if seconds is not None else _duration(audio) - start) + OFFSET + 1.0
        delay = int(OFFSET * 1000)
        cut = ["-ss", str(start), "-t", str(seconds)] if seconds is not None else []
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i",
                        str(media / "video" / FOOTAGE), *cut, "-i", str(audio), "-filter_complex",
                        f"[1:a]aresample=16000,pan=mono|c0=c0,adelay={delay}|{delay},apad[a]",
                        "-map", "0:v:0", "-map", "[a]", "-t", f"{length:.2f}", "-c:v", "libx264", "-preset",
                        "veryfast", "-crf", "32", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(out)],
                       check=True)
        print("made", out)
    if distractors is not None:
        link_videos(folder, sorted(distractors.iterdir()))


def link_videos(folder: Path, videos: list[Path]) -> None:
    """Symbolic links in ``folder`` to the files among ``videos`` (existing links are kept)."""
    for video in videos:
        link = folder / video.name
        if video.is_file() and not link.exists():
            link.symlink_to(video.resolve())


def run(build: Callable[[Path, Path, Path | None], None], doc: str) -> None:
    """The command line of a library builder: FOLDER [--media DIR] [--with FOLDER]."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    ap.add_argument("--with", dest="distractors", type=Path, help="link the videos of this folder beside them")
    args = ap.parse_args()
    build(args.folder, args.media, args.distractors)


def main() -> None:
    run(build, __doc__)


if __name__ == "__main__":
    main()
