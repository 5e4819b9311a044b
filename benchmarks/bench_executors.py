"""Indexing wall time of the same videos with the local executor and with the Ray executor.

Indexes the same N distinct videos (default 12: copies of sample_media/*.mp4 remuxed
with ffmpeg, ``-c copy`` and a different ``comment`` tag each, so every copy has its own
bytes, hence its own content id, and the same streams and duration) into a fresh index
directory per run, through :class:`indexer.writer.Indexer`, with the packaged profile and

* ``local``: :class:`~indexer.pipeline.LocalExecutor` (the baseline), and
* ``ray``: :class:`~indexer.distributed.RayExecutor` on a new local Ray with every CPU
  of this machine (default :class:`~indexer.distributed.RayOptions`: one worker per CPU).

Each run of each executor is a fresh Python process (so memory and imports are its own,
as for ``videoqa index``); both run in every round, their order alternating. One untimed
run of each on one video warms the page cache first. Phases: *start-up* (building the
executor: ``import ray``, ``ray.init``, the pool's creation; nothing for local), *first
result* (from the start of ``Indexer.index`` to the first video written: imports, model
loads and one video), *all workers' first* (until every worker has returned a video;
the same for local), *steady* (from there to the end of ``Indexer.index``; its x realtime
counts the videos that came after), *close* (``ray.shutdown``) and *total* (start-up +
all workers' first + steady + close). Throughput is seconds of video per wall second
(x realtime). Memory: peak RSS of the driver process (VmHWM) and the peak of the summed
RSS and PSS of the driver and all its descendants (Ray's GCS, raylet and workers),
sampled every 0.5 s from /proc, plus the largest worker. Each run's catalog must hold the
N videos and no failure; the moments of every copy are compared across runs and executors.

    python benchmarks/bench_executors.py [--runs 3] [--videos 12] [--whisper tiny.en] [--markdown]

Prints a table and writes benchmarks/results/executors[-MODEL].json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from _common import machine, median, proc_status_kib, reset_peak_rss, write_json  # noqa: E402

from indexer.catalog import Catalog  # noqa: E402
from indexer.media import probe  # noqa: E402
from indexer.pipeline import IndexOptions, LocalExecutor  # noqa: E402
from indexer.writer import Indexer  # noqa: E402
from models.hub import ModelHub, ModelsConfig, RoleConfig  # noqa: E402

MIB = 2**20


# -- videos --------------------------------------------------------------------------------
def make_videos(folder: Path, n: int) -> list[Path]:
    """N remuxed copies of sample_media/*.mp4 (round robin), each with its own bytes."""
    sources = sorted((ROOT / "sample_media").glob("*.mp4"))
    if not sources:
        raise SystemExit("no sample_media/*.mp4")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        src = sources[k % len(sources)]
        dst = folder / f"{src.stem}_copy{k:02d}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy",
                        "-metadata", f"comment=copy-{k}", str(dst)], check=True)
        out.append(dst)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in out}
    if len(digests) != n:
        raise SystemExit(f"the {n} copies have only {len(digests)} distinct contents")
    return out


def source_of(path: str) -> str:
    return Path(path).stem.rsplit("_copy", 1)[0]


# -- memory --------------------------------------------------------------------------------
def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class TreeMemory:
    """Peak memory of this process (VmHWM, reset at start) and of its process tree (sampled)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.pid = os.getpid()
        self.tree_rss = self.tree_pss = self.worker_rss = 0
        self.workers: set[int] = set()
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._hwm_reset = False

    def __enter__(self) -> "TreeMemory":
        self._hwm_reset = reset_peak_rss()
        self._driver_sampled = 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        rss = pss = 0
        pids = _descendants(self.pid)
        self.processes = max(self.processes, len(pids))
        for pid in pids:
            r = proc_status_kib("VmRSS", pid)
            rss += r
            pss += _pss_kib(pid)
            if pid != self.pid and _cmdline(pid).startswith("ray::_Worker"):
                self.workers.add(pid)
                self.worker_rss = max(self.worker_rss, r)
        self._driver_sampled = max(self._driver_sampled, proc_status_kib("VmRSS", self.pid))
        self.tree_rss, self.tree_pss = max(self.tree_rss, rss), max(self.tree_pss, pss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def result(self) -> dict[str, Any]:
        driver = proc_status_kib("VmHWM", self.pid) if self._hwm_reset else self._driver_sampled
        tree = max(self.tree_rss, driver)  # sampled; the driver's own peak is exact
        return {"driver_peak_rss_mib": round(driver / 1024), "tree_peak_rss_mib": round(tree / 1024),
                "tree_peak_pss_mib": round(self.tree_pss / 1024), "worker_peak_rss_mib": round(self.worker_rss / 1024),
                "worker_processes": len(self.workers), "tree_processes": self.processes}


# -- one run -------------------------------------------------------------------------------
def index_once(kind: str, videos: list[Path], config: ModelsConfig, options: IndexOptions,
               durations: dict[str, float]) -> dict[str, Any]:
    """Index ``videos`` into a fresh directory with the ``kind`` executor; times, memory, catalog check."""
    arrivals: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp, TreeMemory() as memory:
        t0 = time.perf_counter()
        hub = ModelHub(config)
        hub_model = hub.required.transcriber.model_name
        if kind == "ray":
            from indexer.distributed import RayExecutor

            executor: Any = RayExecutor(config, options)
        else:
            executor = LocalExecutor(hub, options)
        t_started = time.perf_counter()
        try:
            report = Indexer(Path(tmp), hub, options, executor=executor).index(
                videos, on_file=lambda done, total, r: arrivals.append((time.perf_counter(), r.path)))
            t_indexed = time.perf_counter()
            n_workers = executor.workers if kind == "ray" else 1
            # Which workers ran, and with how many threads (not timed).
            workers = executor.worker_info() if kind == "ray" else [
                {"pid": os.getpid(), "torch_threads": _torch_threads(), "models": hub.loaded()}]
        finally:
            t_close = time.perf_counter()
            executor.close()
            t_end = time.perf_counter()
        with Catalog(Path(tmp), readonly=True) as catalog:
            stats = catalog.stats()
            failures = [f"{f['path']}: {f['stage']}: {f['error']}" for f in catalog.failures()]
            transcripts = {}
            for video in catalog.videos():
                texts = [f"{m.start:.2f}|{m.end:.2f}|{m.text}" for m in catalog.moments_of(video.id)]
                transcripts[Path(video.path).name] = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    del hub
    n = len(videos)
    if stats["videos"] != n or stats["failures"] or report.count("indexed") != n:
        raise SystemExit(f"{kind}: the catalog holds {stats['videos']} videos and {stats['failures']} failures "
                         f"(expected {n} and 0); {failures[:3]}")
    # Warm: once every worker has returned its first video (all started together); the steady
    # phase runs from there to the end of Indexer.index and counts the videos that came after.
    warm_t = arrivals[min(n_workers, len(arrivals)) - 1][0]
    total_video = sum(durations.values())
    steady_video = sum(durations[Path(p).name] for t, p in arrivals if t > warm_t)
    steady = t_indexed - warm_t
    total = (t_indexed - t0) + (t_end - t_close)
    out = {
        "executor": kind, "videos": stats["videos"], "failures": stats["failures"], "moments": stats["moments"],
        "keyframes": stats["keyframes"], "video_seconds": round(total_video, 2), "workers_n": n_workers,
        "startup_s": round(t_started - t0, 3), "first_result_s": round(arrivals[0][0] - t_started, 3),
        "warm_s": round(warm_t - t_started, 3), "steady_s": round(steady, 3), "steady_videos": len(arrivals)
        - min(n_workers, len(arrivals)), "close_s": round(t_end - t_close, 3), "total_s": round(total, 3),
        "realtime": round(total_video / total, 3),
        "steady_realtime": round(steady_video / steady, 3) if steady > 0 else None,
        "whisper_model": hub_model, "workers": workers, "transcripts": transcripts, **memory.result(),
    }
    return out


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None


# -- main ----------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """One executor's run in a fresh process (so that its memory and imports are its own)."""
    config = models_config(args.whisper)
    videos = sorted(Path(args.folder).glob("*.mp4"))
    durations = {v.name: probe(v).duration for v in videos}
    result = index_once(args.one, videos, config, IndexOptions(), durations)
    Path(args.out).write_text(json.dumps(result))


def models_config(whisper: str | None) -> ModelsConfig:
    roles = {"transcriber": RoleConfig(model=whisper)} if whisper else {}
    return ModelsConfig(profile="packaged", roles=roles)


def spawn(kind: str, folder: Path, whisper: str | None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, __file__, "--one", kind, "--folder", str(folder), "--out", out.name]
        if whisper:
            cmd += ["--whisper", whisper]
        subprocess.run(cmd, check=True)
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--videos", type=int, default=12, help="distinct videos per run (default 12)")
    parser.add_argument("--whisper", default=None, help="Whisper model, e.g. tiny.en (default: the packaged "
                                                        "profile's, base)")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--one", choices=("local", "ray"), help=argparse.SUPPRESS)  # a child: one run
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return child(args)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed to make the copies")

    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        videos = make_videos(Path(tmp) / "videos", args.videos)
        warm = make_videos(Path(tmp) / "warm", 1)
        # Warm-up, not counted: the page cache of the weights and libraries, Ray's first start.
        for kind in ("local", "ray"):
            spawn(kind, warm[0].parent, args.whisper)

        load = os.getloadavg()[0]
        print(f"load average before the runs: {load:.2f}", file=sys.stderr)
        runs: list[dict[str, dict]] = []
        t_all = time.perf_counter()
        for run in range(args.runs):
            order = ("local", "ray") if run % 2 == 0 else ("ray", "local")
            pair = {}
            for kind in order:
                pair[kind] = r = spawn(kind, videos[0].parent, args.whisper)
                print(f"run {run + 1}/{args.runs} {kind}: {r['videos']} indexed, {r['failures']} failed, "
                      f"total {r['total_s']:.1f} s (start-up {r['startup_s']:.1f}, first result "
                      f"{r['first_result_s']:.1f}, all workers' first {r['warm_s']:.1f}, "
                      f"steady {r['steady_s']:.1f}, close {r['close_s']:.1f}), "
                      f"peak RSS driver {r['driver_peak_rss_mib']} MiB, tree {r['tree_peak_rss_mib']} MiB",
                      file=sys.stderr)
            runs.append(pair)
        elapsed = time.perf_counter() - t_all
    report(args, runs, elapsed, load)


def report(args: argparse.Namespace, runs: list[dict[str, dict]], elapsed: float, load: float) -> None:
    summary = {}
    keys = ("startup_s", "first_result_s", "warm_s", "steady_s", "close_s", "total_s", "realtime", "steady_realtime",
            "driver_peak_rss_mib", "tree_peak_rss_mib", "tree_peak_pss_mib", "worker_peak_rss_mib")
    for kind in ("local", "ray"):
        summary[kind] = {k: median(p[kind][k] for p in runs) for k in keys}
        summary[kind]["workers"] = len(runs[0][kind]["workers"])
    # ray/local: total wall time, and steady wall time per second of video
    ratio = {"total_s": median(p["ray"]["total_s"] / p["local"]["total_s"] for p in runs),
             "steady_s_per_video_s": median(p["local"]["steady_realtime"] / p["ray"]["steady_realtime"]
                                            for p in runs)}

    # Do the executors write the same moments? Per copy, across runs and executors.
    by_copy: dict[str, set[str]] = {}
    by_kind: dict[str, dict[str, set[str]]] = {"local": {}, "ray": {}}
    for p in runs:
        for kind in ("local", "ray"):
            for name, digest in p[kind]["transcripts"].items():
                by_copy.setdefault(name, set()).add(digest)
                by_kind[kind].setdefault(source_of(name), set()).add(digest)
    differing = sorted(name for name, ds in by_copy.items() if len(ds) > 1)

    first = runs[0]
    video_s, whisper = first["local"]["video_seconds"], first["local"]["whisper_model"]
    print(f"\nmachine: {machine()}")
    print(f"{args.videos} distinct videos, {video_s:.1f} s of video; Whisper {whisper}; median of {args.runs} "
          f"runs ({elapsed / 60:.1f} min in all)")
    print("Ray workers: " + "; ".join(f"torch threads {w['torch_threads']}" for w in first["ray"]["workers"])
)
    print(f"ray/local wall time: total {ratio['total_s']:.2f}, steady (per second of video) "
          f"{ratio['steady_s_per_video_s']:.2f} (medians of per-run ratios)")
    print("moments identical across runs and executors: " + ("yes" if not differing else
                                                              f"no, {len(differing)} copies differ"))
    for kind in ("local", "ray"):
        for src, ds in sorted(by_kind[kind].items()):
            if len(ds) > 1:
                print(f"  {kind}: {src}: {len(ds)} different sets of moments over its copies and runs")
    print()

    cols = ("start-up s", "first result s", "all workers' first s", "steady s", "close s", "total s",
            "x realtime", "steady x realtime", "driver peak RSS MiB", "tree peak RSS MiB", "tree peak PSS MiB")
    rows = []
    for kind in ("local", "ray"):
        s = summary[kind]
        name = "local (1 process)" if kind == "local" else f"ray ({s['workers']} workers x 1 CPU)"
        rows.append([name] + [f"{s[k]:.1f}" for k in ("startup_s", "first_result_s", "warm_s", "steady_s",
                                                       "close_s", "total_s")]
                    + [f"{s['realtime']:.2f}", f"{s['steady_realtime']:.2f}"]
                    + [f"{s[k]:.0f}" for k in ("driver_peak_rss_mib", "tree_peak_rss_mib", "tree_peak_pss_mib")])
    rows.append(["ratio ray/local", "", "", "", f"{ratio['steady_s_per_video_s']:.2f}", "", f"{ratio['total_s']:.2f}"]
                + [""] * 5)
    if args.markdown:
        print("| executor | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        width = max(len(c) for c in cols) + 2
        print(f"{'executor':<26}" + "".join(f"{c:>{width}}" for c in cols))
        for row in rows:
            print(f"{row[0]:<26}" + "".join(f"{v:>{width}}" for v in row[1:]))
    print(f"largest Ray worker: {summary['ray']['worker_peak_rss_mib']:.0f} MiB RSS; close (ray.shutdown) "
          f"{summary['ray']['close_s']:.1f} s")
    name = "executors" + (f"-{args.whisper}" if args.whisper else "")
    path = write_json(name, {"machine": machine(), "runs": args.runs, "videos": args.videos,
                             "video_seconds": video_s, "whisper_model": whisper, "median": summary,
                             "ratio_ray_local": ratio, "moments_differ": differing, "elapsed_s": round(elapsed, 1),
                             "load_average_before": round(load, 2), "per_run": runs})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
