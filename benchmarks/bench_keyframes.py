"""Keyframe extraction and text reading speed at 720p and 1080p H.264: multiples of realtime,
the ratio against a naive baseline (decode every frame, difference it at full size) in the
same run, where the time goes (decoding every frame, reference frames only, key frames
only), and the one shared decode pass with text reading on (720p).

    python benchmarks/bench_keyframes.py [--runs 3] [--seconds 60] [--sizes 720p 1080p] [--markdown]

Test videos are made with ffmpeg from real footage (../shared/media/video/
animation_big-buck-bunny_0-30s.webm, looped and scaled; x264 defaults, so key frames
come every 250 frames and at scene cuts, or a 2-s GOP) with a caption burned in that
changes every 5 s, into a temporary folder. Prints tables and writes
benchmarks/results/keyframes.json.
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

from indexer.decode import decode_passes  # noqa: E402
from indexer.frames import decode_frames  # noqa: E402
from indexer.keyframes import KeyframeOptions, extract_keyframes  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "media" / "video" / "animation_big-buck-bunny_0-30s.webm"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


GOPS = {"x264 default GOP (250)": [], "2-s GOP (-g 48)": ["-g", "48"]}


FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def make_video(folder: Path, name: str, size: tuple[int, int], seconds: float, gop: list[str]) -> Path:
    out = folder / f"{name}-{len(gop)}.mp4"
    caption = folder / "caption.txt"  # drawtext expands %{...}: the scene number changes every 5 s
    caption.write_text("Scene %{eif:trunc(t/5)+1:d} of the film")
    draw = (f",drawtext=fontfile={FONT}:textfile={caption}:fontsize=h/16:fontcolor=white:box=1:boxcolor=black@0.6:"
            "x=(w-tw)/2:y=h*0.8")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(FOOTAGE),
                    "-t", str(seconds), "-vf", f"scale={size[0]}:{size[1]},fps=24{draw}", "-an",
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


def decode_only(path: Path, skip: str) -> int:
    """Decode the video with FFmpeg's ``skip_frame`` set and nothing else (the profile's floor)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = skip
        return sum(1 for _ in container.decode(stream))


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
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    args = parser.parse_args()
    from models import ModelHub, ModelsConfig

    hub = ModelHub(ModelsConfig(profile="packaged"))
    hub.required.text_reader.load()
    rows, profile, screen = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for (name, size), (gop_name, gop) in ((s, g) for s in SIZES.items() for g in GOPS.items()
                                              if s[0] in args.sizes):
            video = make_video(Path(tmp), name, size, args.seconds, gop)
            label = f"{name}, {gop_name}"
            ours, frames = timed(lambda v=video: extract_keyframes(v, KeyframeOptions()), args.runs)
            base, _ = timed(lambda v=video: naive_keyframes(v), args.runs)
            rows.append({"video": label, "ours_s": round(ours, 3),
                         "ours_x_realtime": round(args.seconds / ours, 1), "baseline_s": round(base, 3),
                         "baseline_x_realtime": round(args.seconds / base, 1),
                         "speedup": round(base / ours, 2), "keyframes": len(frames)})
            entry = {"video": label}
            for skip, col in (("DEFAULT", "every frame"), ("NONREF", "reference frames"), ("NONKEY", "key frames")):
                secs, n = timed(lambda v=video, k=skip: decode_only(v, k), args.runs)
                entry[f"{col} s"], entry[f"{col} frames"] = round(secs, 3), n
                entry[f"{col} x realtime"] = round(args.seconds / secs, 1)
            profile.append(entry)
            if name != "720p":
                continue
            before = decode_passes(video)
            cpu0 = time.process_time()
            secs, result = timed(lambda v=video: decode_frames(v, hub), args.runs)
            stats = result.screen_stats
            screen.append({"video": label, "pass_s": round(secs, 3), "pass_x_realtime": round(args.seconds / secs, 1),
                           "text_s": result.screen_seconds,
                           "text_x_realtime": round(args.seconds / max(result.screen_seconds, 1e-6), 1),
                           "decoded": result.stats.decoded, "sampled": stats.sampled, "detected": stats.detected,
                           "recognized": stats.recognized, "reused": stats.reused,
                           "screen_moments": len(result.screen), "keyframes": len(result.keyframes),
                           "pass_cpu_s": round((time.process_time() - cpu0) / args.runs, 3),
                           "decode_passes_per_run": (decode_passes(video) - before) / args.runs})
    print(f"machine: {machine()}\nmedian of {args.runs} runs, {args.seconds:.0f} s videos, 24 fps; targets: >= 100x "
          "realtime, >= 5x the baseline\n")
    for title, table in (("keyframes alone (own decode pass) against the naive baseline", rows),
                         ("decode only, by frames FFmpeg decodes (skip_frame)", profile),
                         ("one shared pass at 720p: keyframes + text reading (screen_fps 1)", screen)):
        print(f"\n{title}")
        cols = list(table[0])
        if args.markdown:
            print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
            for r in table:
                print("| " + " | ".join(str(r[c]) for c in cols) + " |")
        else:
            for r in table:
                print("  ".join(f"{c}={r[c]}" for c in cols))
    rows = {"keyframes": rows, "decode_profile": profile, "screen": screen}
    print(f"wrote {write_json('keyframes', {'machine': machine(), 'runs': args.runs, 'rows': rows})}")


if __name__ == "__main__":
    main()
