"""Indexing speed per stage, as multiples of realtime (video seconds per wall second).

Runs the real indexing pipeline (:class:`indexer.writer.Indexer`) several times over
the same files into fresh index directories, with the models loaded beforehand (their
load time is reported on its own), and reports the median time of each stage.

    python benchmarks/bench_indexing.py [--runs 3] [--screen both] [FOLDER ...]

Default folders: sample_media/ and ../shared/media/video/. ``--screen both`` (the default)
runs every file with on-screen text reading off and on, interleaved, so the cost of reading
text is measured in the same run. Prints a table and writes benchmarks/results/indexing.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_json  # noqa: E402

from app.qa import VideoQA  # noqa: E402
from app.settings import load_settings  # noqa: E402
from indexer.pipeline import STAGES  # noqa: E402
from indexer.writer import Indexer  # noqa: E402

MODEL_STAGES = ("speech", "embed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        default=[ROOT / "sample_media", ROOT.parent / "shared" / "media" / "video"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--whisper-model", default=None, help="e.g. base (default: the profile's)")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--screen", choices=("on", "off", "both"), default="both",
                        help="On-screen text reading (both: off and on, interleaved).")
    args = parser.parse_args()

    settings = load_settings({"profile": "packaged", "whisper_model": args.whisper_model}, env={})
    qa = VideoQA(settings)
    hub = qa.hub
    loads = {}
    for role in ("voice_activity", "transcriber", "text_reader", "text_embedder"):
        model = hub.require(role)
        t0 = time.perf_counter()
        model.load()
        loads[role] = {"model": model.model_name, "seconds": round(time.perf_counter() - t0, 2)}

    folders = [f for f in args.folders if f.exists()]
    modes = {"on": (True,), "off": (False,), "both": (False, True)}[args.screen]
    per_file: dict[tuple[bool, str], dict] = {}
    cpu: dict[bool, list[float]] = {}
    for run in range(args.runs):
        for screen in modes:
            options = qa.index_options(force=True)
            options = dataclasses.replace(options, screen=dataclasses.replace(options.screen, enabled=screen))
            # cold, as for new files: the faster-whisper backend keeps its last few encodings,
            # and every run indexes the same audio again
            getattr(hub.require("transcriber"), "forget_encodings", lambda: None)()
            with tempfile.TemporaryDirectory() as tmp:
                cpu0 = time.process_time()  # every thread of this process: what the work costs, whatever else runs
                report = Indexer(Path(tmp), hub, options).index(folders)
                cpu.setdefault(screen, []).append(time.process_time() - cpu0)
            for r in report.results:
                folder = next(str(f) for f in folders if r.path.startswith(str(f.absolute())))
                entry = per_file.setdefault((screen, r.path), {"folder": folder, "duration": r.duration,
                                                               "status": r.status, "runs": []})
                entry["runs"].append(r.seconds)
            print(f"run {run + 1}/{args.runs}, screen text {'on' if screen else 'off'}: {report.count('indexed')} "
                  f"indexed, {report.count('failed')} failed in {report.elapsed:.1f} s", file=sys.stderr)

    rows = []
    for (screen, path), entry in per_file.items():
        stages = {s: median(run.get(s, 0.0) for run in entry["runs"]) for s in (*STAGES, "screen")}
        stages["total"] = median(sum(v for k, v in run.items() if k != "screen") for run in entry["runs"])
        rows.append({"file": Path(path).name, "folder": entry["folder"], "screen_text": screen,
                     "duration": entry["duration"], "status": entry["status"], "median_seconds": stages})

    def realtime(duration: float, seconds: float) -> str:
        return f"{duration / seconds:.1f}" if seconds > 0.0005 else "-"

    groups = {}
    for row in rows:
        key = f"all of {Path(row['folder']).name}/, screen text {'on' if row['screen_text'] else 'off'}"
        g = groups.setdefault(key, {"duration": 0.0, **{s: 0.0 for s in (*STAGES, "screen", "total")}})
        g["duration"] += row["duration"]
        for s in (*STAGES, "screen", "total"):
            g[s] += row["median_seconds"][s]

    # frames: the one decode pass (keyframes, and text reading when on); screen: the text reading part of it
    cols = ("frames", "screen", "audio", "speech", "embed", "write", "total")
    lines = [(row["file"] + (" (text on)" if row["screen_text"] else ""), row["duration"],
              [realtime(row["duration"], row["median_seconds"][c]) for c in cols]) for row in rows
             if row["screen_text"] == modes[-1]]
    lines += [(name, g["duration"], [realtime(g["duration"], g[c]) for c in cols]) for name, g in groups.items()]
    seconds = sum(g["duration"] for name, g in groups.items() if name.endswith("on" if modes[-1] else "off"))
    cpu_rows = {("on" if k else "off"): {"cpu_s": round(median(v), 2),
                                         "x_realtime_by_cpu": round(seconds / median(v), 2)} for k, v in cpu.items()}
    print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("model load (once): " + ", ".join(f"{k} {v['model']} {v['seconds']} s" for k, v in loads.items()))
    print(f"multiples of realtime, median of {args.runs} runs ('-': nothing to do)\n")
    if args.markdown:
        print("| file | seconds | " + " | ".join(cols) + " |\n|---|---:|" + "---:|" * len(cols))
        for name, dur, vals in lines:
            print(f"| {name} | {dur:.1f} | " + " | ".join(vals) + " |")
    else:
        print(f"{'file':<50} {'secs':>6} " + " ".join(f"{c:>10}" for c in cols))
        for name, dur, vals in lines:
            print(f"{name[:50]:<50} {dur:>6.1f} " + " ".join(f"{v:>10}" for v in vals))
    print(f"\nCPU seconds of the whole run ({seconds:.1f} s of video), median: " + ", ".join(
        f"screen text {k}: {v['cpu_s']} s = {v['x_realtime_by_cpu']}x realtime on one core"
        for k, v in cpu_rows.items()))
    path = write_json("indexing", {"cpu": cpu_rows, "machine": machine(), "runs": args.runs, "model_load": loads,
                                   "files": rows, "folders": groups,
                                   "whisper_model": hub.required.transcriber.model_name})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
