"""How many videos a second the one catalog writer stores into a large index.

With the Ray executor many workers feed one writer: its cost per video bounds the whole
run. Per video the writer commits the catalog (one SQLite transaction) and updates the
keyword and vector indexes. Writing those files after every video (the baseline, what
``DerivedIndexes.apply`` does by default) costs about a second at a million moments;
the indexer instead applies each video in memory and writes them with ``maybe_flush``,
about a tenth of the writer's time. Both are measured in the same run, alternating, on a
copy of a generated library of ``bench_search.py`` (``benchmarks/results/search-work``,
made by ``python benchmarks/bench_search.py`` first; a missing 100k library is generated).

    python benchmarks/bench_writer.py --sizes 100000,1000000 --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_search  # noqa: E402
from _common import RESULTS, machine, median, write_json  # noqa: E402

MODES = ("every video", "batched")


def add_videos(index_dir: Path, mode: str, videos: int, moments: int, seed: int) -> list[float]:
    """Store ``videos`` generated videos the way the indexer does; seconds per video (the last includes the
    final flush)."""
    from indexer.catalog import Catalog
    from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Keyframe, Moment
    from indexer.derived import DerivedIndexes

    rng = np.random.default_rng(seed)
    maker = bench_search.TextMaker(rng)
    text_centres = bench_search._centres(rng, bench_search.TEXT_DIM)
    image_centres = bench_search._centres(rng, bench_search.IMAGE_DIM)
    jpeg = bench_search._tiny_jpeg()
    seconds = []
    with Catalog(index_dir) as catalog:
        derived = DerivedIndexes(catalog)
        assert derived.usable(), "the copy's derived indexes are not current"
        for v in range(videos):
            ms = [Moment(10.0 * i, 10.0 * i + 8, "speech", maker.text(30), "en") for i in range(moments)]
            ks = [Keyframe(t=10.0 * i + 4, score=20.0, jpeg=jpeg, width=32, height=18) for i in range(moments)]
            t0 = time.perf_counter()
            added = catalog.add_video(
                content_id=f"writer-{seed}-{v}", path=f"/library/writer_{seed}_{v}.mp4", stat=None,
                info={"duration": 10.0 * moments, "fps": 25.0, "width": 1280, "height": 720, "has_audio": True,
                      "language": "en"},
                keyframes=ks, moments=ms,
                vectors={TEXT_SPACE: ("moment", bench_search._vectors(rng, text_centres, moments)),
                         IMAGE_SPACE: ("keyframe", bench_search._vectors(rng, image_centres, moments))},
                run_id=None)
            for m, mid in zip(ms, added.moment_ids):
                m.id, m.video_id = mid, added.video_id
            derived.apply(catalog.videos([added.video_id])[0], ms,
                          {TEXT_SPACE: (added.moment_ids, bench_search._vectors(rng, text_centres, moments)),
                           IMAGE_SPACE: (added.keyframe_ids, bench_search._vectors(rng, image_centres, moments))},
                          flush=mode == "every video")
            if mode == "batched":
                derived.maybe_flush()
            if v == videos - 1:
                derived.flush()
            seconds.append(time.perf_counter() - t0)
        assert derived.is_current()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Library sizes in moments (comma-separated).")
    parser.add_argument("--videos", type=int, default=30, help="Videos stored per run.")
    parser.add_argument("--moments", type=int, default=20, help="Moments (and keyframes) per stored video.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=RESULTS / "search-work")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        source = args.work / f"m{size}-s0"
        if not (source / "bench.json").exists():
            if size > 100_000:
                print(f"skip {size:,}: no library in {source} (python benchmarks/bench_search.py makes it)")
                continue
            bench_search.generate(source, size, 0)
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            copy = Path(tmp) / "index"
            print(f"{size:,} moments: copying the library", file=sys.stderr, flush=True)
            shutil.copytree(source, copy)
            bench_search.derive(copy, size, "auto", "auto")  # the kinds the indexer would use at this size
            per_mode: dict[str, list[float]] = {m: [] for m in MODES}
            for run in range(args.runs):
                for mode in (MODES if run % 2 == 0 else MODES[::-1]):
                    seconds = add_videos(copy, mode, args.videos, args.moments, seed=run * 10 + MODES.index(mode))
                    per_mode[mode].append(sum(seconds) / len(seconds))
                    print(f"  run {run + 1} {mode}: {1000 * per_mode[mode][-1]:.0f} ms per video", file=sys.stderr,
                          flush=True)
        row = {"moments": size, "videos_per_run": args.videos, "moments_per_video": args.moments,
               **{f"{m} ms": round(1000 * median(per_mode[m]), 1) for m in MODES}}
        row["ratio"] = round(row["batched ms"] / row["every video ms"], 3)
        row["writer videos/s (batched)"] = round(1000 / row["batched ms"], 1)
        rows.append(row)
    print("| moments | writes after every video: ms per video | batched: ms per video | ratio | writer videos/s |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['moments']:,} | {r['every video ms']} | {r['batched ms']} | {r['ratio']} | "
              f"{r['writer videos/s (batched)']} |")
    path = write_json("writer", {"machine": machine(), "runs": args.runs, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
