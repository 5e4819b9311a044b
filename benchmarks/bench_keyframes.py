"""Keyframe extraction speed at 720p and 1080p H.264: multiples of realtime, and the ratio
against a naive baseline (decode every frame, difference it at full size) in the same run.

    python benchmarks/bench_keyframes.py [--runs 3] [--seconds 60] [--markdown]

Test videos are made with ffmpeg from real footage (../shared/media/video/
animation_big-buck-bunny_0-30s.webm, looped and scaled; x264 defaults, so key frames
come every 250 frames and at scene cuts) into a temporary folder. Prints a table and
writes benchmarks/results/keyframes.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_json  # noqa: E402

from indexer.keyframes import KeyframeOptions, extract_keyframes  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "media" / "video" / "animation_big-buck-bunny_0-30s.webm"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


GOPS = {"x264 default GOP (250)": [], "2-s GOP (-g 48)": ["-g", "48"]}


def make_video(folder: Path, name: str, size: tuple[int, int], seconds: float, gop: list[str]) -> Path:
    out = folder / f"{name}-{len(gop)}.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(FOOTAGE),
                    "-t", str(seconds), "-vf", f"scale={size[0]}:{size[1]},fps=24", "-an",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", *gop, str(out)],
                   check=True)
    return out


def naive_keyframes(path: Path, threshold: float = 12.0) -> list[float]:
    """The baseline: decode every frame, grayscale at full size, mean absolute difference to the previous."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    prev, kept = None, []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if prev is None or float(cv2.absdiff(gray, prev).mean()) >= threshold:
            kept.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        prev = gray
    cap.release()
    return kept


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (name, size), (gop_name, gop) in ((s, g) for s in SIZES.items() for g in GOPS.items()):
            video = make_video(Path(tmp), name, size, args.seconds, gop)
            ours, frames = timed(lambda v=video: extract_keyframes(v, KeyframeOptions()), args.runs)
            base, _ = timed(lambda v=video: naive_keyframes(v), args.runs)
            rows.append({"video": f"{name} H.264, {gop_name}, {args.seconds:.0f} s, 24 fps", "ours_s": round(ours, 3),
                         "ours_x_realtime": round(args.seconds / ours, 1), "baseline_s": round(base, 3),
                         "baseline_x_realtime": round(args.seconds / base, 1),
                         "speedup": round(base / ours, 2), "keyframes": len(frames)})
    print(f"machine: {machine()}\nmedian of {args.runs} runs; targets: >= 100x realtime, >= 5x the baseline\n")
    cols = ("video", "ours_s", "ours_x_realtime", "baseline_s", "baseline_x_realtime", "speedup", "keyframes")
    if args.markdown:
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    else:
        for r in rows:
            print("  ".join(f"{c}={r[c]}" for c in cols))
    print(f"wrote {write_json('keyframes', {'machine': machine(), 'runs': args.runs, 'rows': rows})}")


if __name__ == "__main__":
    main()
