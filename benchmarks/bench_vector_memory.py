"""What the text-vector space costs at a large library, by vector size: memory, load and search.

    python benchmarks/bench_vector_memory.py --moments 1000000 --dims 384,1408

``bench_search.py`` measures the whole search process at 1k-1M moments with 384-d text vectors
(all-MiniLM-L6-v2's size). The packaged default since issue 13, ``by-language``, writes 1408-d
ones (MiniLM's 384 and two of USE's 512). This benchmark measures only what the size changes,
with the product's own ``indexer.vector_index.VectorStore`` (IVF with 8-bit scalars above
``vector_ivf_above``): for each size, random unit vectors drawn around 2,000 centres (as in
bench_search) are built into a store and saved, then a fresh process loads it and answers 200
queries. Reported per size: the index file, the process's RSS growth when loading it, load time,
search p50/p95 (median of ``--runs`` passes) and build time; and the ratio of each against the
first size in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, median, proc_status_kib, write_json  # noqa: E402

CENTRES = 2_000


def _vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in blocks: the noise of 1M x 1408 at once would double the memory
        stop = min(n, start + 100_000)
        block = centres[rng.integers(0, CENTRES, stop - start)]
        block += rng.normal(scale=0.5 / np.sqrt(dim), size=block.shape).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _build(folder: Path, n: int, dim: int, seed: int) -> dict:
    from indexer.vector_index import VectorStore

    matrix = _vectors(np.random.default_rng(seed), n, dim)
    store = VectorStore(folder, "text")
    t0 = time.perf_counter()
    store.build(np.arange(n, dtype=np.int64), matrix)
    store.save()
    return {"build_s": time.perf_counter() - t0, "kind": store.kind}


def _measure(folder: Path, dim: int, runs: int, seed: int) -> dict:
    from indexer.vector_index import VectorStore

    queries = _vectors(np.random.default_rng(seed + 1), 200, dim)
    before = proc_status_kib("VmRSS")
    t0 = time.perf_counter()
    store = VectorStore(folder, "text").load()
    load_s = time.perf_counter() - t0
    loaded = proc_status_kib("VmRSS")
    passes = []
    for _ in range(runs):
        times = []
        for q in queries:
            t = time.perf_counter()
            store.search(q, 200)
            times.append((time.perf_counter() - t) * 1000)
        passes.append((float(np.percentile(times, 50)), float(np.percentile(times, 95))))
    return {"load_s": load_s, "rss_growth_mib": (loaded - before) / 1024, "kind": store.kind,
            "p50_ms": median(p[0] for p in passes), "p95_ms": median(p[1] for p in passes)}


def _child(args: argparse.Namespace) -> None:
    folder, dim = Path(args.child), int(args.child_dim)
    out = _build(folder, args.moments, dim, args.seed) if args.child_step == "build" else \
        _measure(folder, dim, args.runs, args.seed)
    print("RESULT " + json.dumps(out))


def _run(args: argparse.Namespace, folder: Path, dim: int, step: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--moments", str(args.moments), "--runs", str(args.runs),
                           "--seed", str(args.seed), "--child", str(folder), "--child-dim", str(dim),
                           "--child-step", step], capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{step} of {dim}-d vectors failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moments", type=int, default=1_000_000)
    ap.add_argument("--dims", default="384,1408")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-dim", help=argparse.SUPPRESS)
    ap.add_argument("--child-step", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    rows = []
    for dim in (int(d) for d in args.dims.split(",")):
        with tempfile.TemporaryDirectory(prefix="vecmem-") as tmp:
            folder = Path(tmp)
            built = _run(args, folder, dim, "build")
            files = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
            rows.append({"dim": dim, "moments": args.moments, "file_mib": files, **built,
                         **_run(args, folder, dim, "measure")})
            print(f"{dim}-d: {rows[-1]}", file=sys.stderr, flush=True)
    base = rows[0]
    print(f"| dim | index | file MiB | RSS growth on load MiB | load s | search p50 ms | p95 ms | build s | "
          f"memory vs {base['dim']}-d | p95 vs {base['dim']}-d |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dim']} | {r['kind']} | {r['file_mib']:.0f} | {r['rss_growth_mib']:.0f} | {r['load_s']:.2f} | "
              f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['build_s']:.0f} | "
              f"{r['rss_growth_mib'] / base['rss_growth_mib']:.2f}x | {r['p95_ms'] / base['p95_ms']:.2f}x |")
    path = write_json("vector_memory", {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                                        "runs": args.runs, "rows": rows})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
