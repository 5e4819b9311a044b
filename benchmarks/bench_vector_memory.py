"""What the text-vector space costs at a large library, by vector size and encoding: memory, load, search, recall.

    python benchmarks/bench_vector_memory.py --moments 1000000 --dims 384,1408
    python benchmarks/bench_vector_memory.py --moments 1000000 --dims 1408 --encodings 8bit,4bit
    python benchmarks/bench_vector_memory.py --moments 50000 --dims 1408 --kind flat \
        --encodings float32,float16,8bit,4bit

``bench_search.py`` measures the whole search process at 1k-1M moments with 384-d text vectors
(all-MiniLM-L6-v2's size). The packaged default since issue 13, ``by-language``, writes 1408-d
ones (MiniLM's 384 and two of USE's 512). This benchmark measures only what the size changes,
with the product's own ``indexer.vector_index.VectorStore`` (``--kind``: auto is IVF above
``vector_ivf_above``; ``--encodings``: the ``vector_encoding`` setting's values): for each size
and encoding, random unit vectors drawn around 2,000 centres (as in bench_search) are built into
a store and saved, then a fresh process loads it and answers 200 queries drawn the same way.
Reported per row: the index file, the process's RSS growth when loading it, load time, search
p50/p95 (median of ``--runs`` passes), build time, recall@10 against exact search over the same
float32 vectors (numpy, in the build step), and the ratio of memory and p95 against the first
row of the same run.
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


def _options(args: argparse.Namespace, encoding: str):
    from indexer.vector_index import VectorIndexOptions

    return VectorIndexOptions(args.kind, encoding=encoding)


def _exact_top(matrix: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """The ids of each query's ``k`` highest inner products, exactly (in blocks of 100,000 rows)."""
    best_ids = np.zeros((len(queries), 0), np.int64)
    best = np.zeros((len(queries), 0), np.float32)
    for start in range(0, len(matrix), 100_000):
        scores = np.concatenate([best, queries @ matrix[start:start + 100_000].T], axis=1)
        ids = np.concatenate([best_ids, np.broadcast_to(np.arange(start, start + min(100_000, len(matrix) - start)),
                                                        (len(queries), min(100_000, len(matrix) - start)))], axis=1)
        top = np.argsort(-scores, axis=1)[:, :k]
        best, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    return best_ids


def _catalog(folder: Path, matrix: np.ndarray) -> np.ndarray:
    """A catalog holding ``matrix`` as the text vectors of moments (10,000 a video); their ids."""
    from indexer.catalog import Catalog
    from indexer.schema import Moment

    ids = []
    with Catalog(folder) as catalog:
        for start in range(0, len(matrix), 10_000):
            block = matrix[start:start + 10_000]
            moments = [Moment(float(i), float(i) + 5, "speech", f"moment {start + i}") for i in range(len(block))]
            ids += catalog.add_video(content_id=f"c{start}", path=f"/videos/{start}.mp4", stat=None,
                                     info={"duration": float(len(block))}, keyframes=[], moments=moments,
                                     vectors={"text": ("moment", block)}, run_id=None).moment_ids
    return np.asarray(ids, dtype=np.int64)


def _build(args: argparse.Namespace, folder: Path, dim: int, encoding: str) -> dict:
    from indexer.vector_index import VectorStore

    matrix = _vectors(np.random.default_rng(args.seed), args.moments, dim)
    queries = _vectors(np.random.default_rng(args.seed + 1), 200, dim)
    if not (folder / "ids.npy").exists():  # the first encoding of this size: the same catalog serves the others
        ids = _catalog(folder, matrix)
        np.save(folder / "ids.npy", ids)
        np.save(folder / "exact.npy", ids[_exact_top(matrix, queries)])
    ids = np.load(folder / "ids.npy")
    store = VectorStore(folder, "text", _options(args, encoding))
    t0 = time.perf_counter()
    store.build(ids, matrix)
    store.save()
    return {"build_s": time.perf_counter() - t0, "kind": store.kind, "encoding": store.encoding}


def _timed(store, queries: np.ndarray, runs: int, exact=None) -> tuple[float, float]:
    """Median over ``runs`` passes of the p50 and p95 of a search for 200 candidates, in ms."""
    passes = []
    for _ in range(runs):
        times = []
        for q in queries:
            t = time.perf_counter()
            store.search(q, 200, exact=exact)
            times.append((time.perf_counter() - t) * 1000)
        passes.append((float(np.percentile(times, 50)), float(np.percentile(times, 95))))
    return median(p[0] for p in passes), median(p[1] for p in passes)


def _recall(store, queries: np.ndarray, truth: np.ndarray, exact=None) -> float:
    """Mean share of each query's exact top 10 among the top 10 of a search for 200 candidates
    (the retriever's number), as the retriever ranks them."""
    return float(np.mean([len(set(store.search(q, 200, exact=exact)[0][:10].tolist()) & set(top.tolist())) / 10
                          for q, top in zip(queries, truth)]))


def _measure(args: argparse.Namespace, folder: Path, dim: int, encoding: str) -> dict:
    from indexer.catalog import Catalog
    from indexer.vector_index import VectorStore

    queries = _vectors(np.random.default_rng(args.seed + 1), 200, dim)
    truth = np.load(folder / "exact.npy")
    catalog = Catalog(folder, readonly=True)
    rescore = lambda ids: catalog.vectors_of("text", ids)  # noqa: E731 - as the retriever passes it
    before = proc_status_kib("VmRSS")
    t0 = time.perf_counter()
    store = VectorStore(folder, "text", _options(args, encoding)).load()
    load_s = time.perf_counter() - t0
    loaded = proc_status_kib("VmRSS")
    out = {"load_s": load_s, "rss_growth_mib": (loaded - before) / 1024, "kind": store.kind}
    out["p50_ms"], out["p95_ms"] = _timed(store, queries, args.runs)
    out["recall@10"] = _recall(store, queries, truth)
    # the retriever's path: candidates scored again with the catalog's float32 vectors
    out["exact_p50_ms"], out["exact_p95_ms"] = _timed(store, queries, args.runs, rescore)
    out["exact_recall@10"] = _recall(store, queries, truth, rescore)
    out["rss_after_mib"] = (proc_status_kib("VmRSS") - before) / 1024
    return out


def _child(args: argparse.Namespace) -> None:
    folder, dim, encoding = Path(args.child), int(args.child_dim), args.encodings
    out = (_build if args.child_step == "build" else _measure)(args, folder, dim, encoding)
    print("RESULT " + json.dumps(out))


def _run(args: argparse.Namespace, folder: Path, dim: int, encoding: str, step: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--moments", str(args.moments), "--runs", str(args.runs),
                           "--seed", str(args.seed), "--kind", args.kind, "--encodings", encoding,
                           "--child", str(folder), "--child-dim", str(dim), "--child-step", step],
                          capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{step} of {dim}-d {encoding} vectors failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moments", type=int, default=1_000_000)
    ap.add_argument("--dims", default="384,1408")
    ap.add_argument("--encodings", default="auto", help="vector_encoding values, comma-separated")
    ap.add_argument("--kind", default="auto", help="vector_index: auto, flat or ivf")
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
            for encoding in args.encodings.split(","):
                built = _run(args, folder, dim, encoding, "build")
                files = sum(p.stat().st_size for p in folder.glob("faiss-*.index")) / 2**20
                rows.append({"dim": dim, "moments": args.moments, "file_mib": files, **built,
                             **_run(args, folder, dim, encoding, "measure")})
                print(f"{dim}-d {encoding}: {rows[-1]}", file=sys.stderr, flush=True)
    base = rows[0]
    label = f"{base['dim']}-d {base['encoding']}"
    print(f"| dim | index | encoding | file MiB | RSS growth on load MiB | load s | build s | FAISS alone: p50 ms | "
          f"p95 ms | recall@10 | with catalog rescoring: p50 ms | p95 ms | recall@10 | memory vs {label} | "
          f"p95 (rescored) vs {label} |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dim']} | {r['kind']} | {r['encoding']} | {r['file_mib']:.0f} | {r['rss_growth_mib']:.0f} | "
              f"{r['load_s']:.2f} | {r['build_s']:.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
              f"{r['recall@10']:.3f} | {r['exact_p50_ms']:.2f} | {r['exact_p95_ms']:.2f} | "
              f"{r['exact_recall@10']:.3f} | {r['rss_growth_mib'] / base['rss_growth_mib']:.2f}x | "
              f"{r['exact_p95_ms'] / base['exact_p95_ms']:.2f}x |")
    path = write_json("vector_memory", {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                                        "runs": args.runs, "kind": args.kind, "rows": rows})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
