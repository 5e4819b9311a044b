"""Search latency at scale: p50/p95 over 200 queries at 1k, 10k, 100k and 1M moments,
index load time and peak memory, with the time split per channel.

    python benchmarks/bench_search.py [--sizes 1000,10000,100000,1000000] [--queries 200]
        [--runs 3] [--keyword-engine auto|whoosh|tantivy] [--vector-index auto|flat|ivf] [--work DIR]

A generated catalog stands in for a large library, written through the real
``Catalog.add_video`` and turned into Whoosh and FAISS files by the real
``DerivedIndexes.rebuild``:

* videos of 100 moments; 80% speech moments of 12-40 words, 20% descriptions of 40-120
  words (the lengths videoqa writes: speech grouped into ~10-s moments, a paragraph per
  description). Words are drawn Zipf-like from the all-MiniLM-L6-v2 WordPiece vocabulary
  (about 20k whole English words), with function words mixed in as in speech;
* one 384-d text vector per moment (all-MiniLM-L6-v2's size; the packaged default since issue 13,
  ``by-language``, writes 1408-d ones) and one keyframe
  with a 512-d image vector per moment (CLIP ViT-B-32's size), drawn around 2,000 random
  centres so that neighbours exist, as in real embeddings.

Queries are questions made from the words of a random moment ("what does the video say
about X Y Z"). Each size is searched in a fresh process through ``retriever.Retriever``
with the packaged MiniLM embedding the query and a random-weight, real-size open_clip
ViT-B-32 text tower embedding it for the visual channel, so every channel runs as in the
full profile (the weights do not change the time). Per query the retriever's own
``timings`` split the time into keyword, semantic (embedding + FAISS), visual and the
catalog reads. Peak RSS is the process's maximum resident set size, models included.
With IVF vectors, the recall@10 and @100 of each space against exact search is measured
afterwards on 200 query vectors drawn like the data.

Generated indexes are kept in ``--work`` (default ``benchmarks/results/search-work``) and
reused by later runs with the same size and seed. Prints a table and writes
``benchmarks/results/search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, median, proc_status_kib, write_json  # noqa: E402

GENERATOR_VERSION = 1
MOMENTS_PER_VIDEO = 100
TEXT_DIM, IMAGE_DIM = 384, 512
CENTRES = 2000
CLIP_MODEL = "ViT-B-32/laion2b_s34b_b79k"
FUNCTION_WORDS = ("the a of and to in is that it was for on with as i you he they we at be this have from or "
                  "but not what all were when there can an which their so if would about up out them then she "
                  "do some her like just know going now very really think right okay here get").split()
QUESTION_FORMS = ("what does the video say about {}", "where is {} shown", "when do they talk about {}",
                  "{}", "show me {}", "which video mentions {}", "how does {} work")


# -- the generated library ------------------------------------------------------------------

def vocabulary() -> list[str]:
    """Whole English words of the MiniLM WordPiece vocabulary, most frequent first (its order)."""
    from models.packaged import packaged_location

    from models.base import default_cache_dir

    loc = packaged_location("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2", default_cache_dir())
    if loc is None:
        raise SystemExit("the packaged all-MiniLM-L6-v2 is not installed: run make install")
    words = [w.strip() for w in (Path(loc.path) / "vocab.txt").read_text().splitlines()]
    stop = set(FUNCTION_WORDS)
    return [w for w in words if w.isalpha() and w.isascii() and len(w) >= 3 and w not in stop]


class TextMaker:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.words = np.array(vocabulary())
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        p = 1.0 / (ranks + 2.7)  # Zipf-Mandelbrot, as in running text
        self.p = p / p.sum()
        self.function = np.array(FUNCTION_WORDS)

    def text(self, n: int) -> str:
        content = self.words[self.rng.choice(len(self.words), size=n, p=self.p)]
        glue = self.function[self.rng.integers(0, len(self.function), size=n)]
        mask = self.rng.random(n) < 0.4  # four words in ten are function words
        return " ".join(np.where(mask, glue, content).tolist())


def _vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    picks = centres[rng.integers(0, len(centres), size=n)]
    v = picks + rng.normal(scale=0.6 / np.sqrt(centres.shape[1]), size=picks.shape).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def _centres(rng: np.random.Generator, dim: int) -> np.ndarray:
    c = rng.normal(size=(CENTRES, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _tiny_jpeg() -> bytes:
    import cv2

    img = np.full((18, 32, 3), 127, np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _options(engine: str, vector_index: str):
    from indexer.keyword_index import KeywordOptions
    from indexer.vector_index import VectorIndexOptions

    return KeywordOptions(engine), VectorIndexOptions(vector_index)


def derive(index_dir: Path, moments: int, engine: str, vector_index: str) -> dict:
    """Make the derived indexes of the kinds asked for (only the parts that differ); their build times."""
    from indexer.catalog import Catalog
    from indexer.derived import DerivedIndexes

    keyword_options, vector_options = _options(engine, vector_index)
    built = {}
    with Catalog(index_dir) as catalog:
        derived = DerivedIndexes(catalog, vector_options, keyword_options)
        if not derived.is_current():
            print(f"  {moments:,} moments: deriving the indexes", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            derived.rebuild()
            built["all"] = round(time.perf_counter() - t0, 1)
        if derived._wanted_engine() != derived.keywords.engine:
            print(f"  {moments:,} moments: keywords to {derived._wanted_engine()}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            derived.rebuild_keywords()
            derived.mark_current()
            built["keywords"] = round(time.perf_counter() - t0, 1)
        for space in derived.spaces():
            store = derived.vector_store(space)
            if store.needs_rebuild():  # another kind or encoding (vector_encoding) than the options want
                want = vector_options.wanted(store.ntotal)
                print(f"  {moments:,} moments: {space} vectors to {want} {vector_options.wanted_encoding(want)}",
                      file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                store.rebuild(catalog)
                built[f"vectors_{space}"] = round(time.perf_counter() - t0, 1)
    return built


def generate(index_dir: Path, moments: int, seed: int, progress: bool = True) -> dict:
    """Write a catalog of ``moments`` moments (and as many keyframes) and derive its indexes."""
    from indexer.catalog import Catalog
    from indexer.schema import IMAGE_SPACE, TEXT_SPACE, Keyframe, Moment
    from indexer.derived import DerivedIndexes
    from indexer.manifest import write_manifest

    marker = index_dir / "bench.json"
    want = {"version": GENERATOR_VERSION, "moments": moments, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()).get("spec") == want:
        return json.loads(marker.read_text())
    import shutil

    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    maker = TextMaker(rng)
    text_centres, image_centres = _centres(rng, TEXT_DIM), _centres(rng, IMAGE_DIM)
    jpeg = _tiny_jpeg()
    t0 = time.perf_counter()
    videos = max(1, moments // MOMENTS_PER_VIDEO)
    words_total = 0
    with Catalog(index_dir) as catalog:
        write_manifest(catalog, {"profile": "bench", "spaces": {
            TEXT_SPACE: {"model": "sentence-transformers/all-MiniLM-L6-v2", "dim": TEXT_DIM},
            IMAGE_SPACE: {"model": CLIP_MODEL, "dim": IMAGE_DIM}}})
        for v in range(videos):
            n = MOMENTS_PER_VIDEO if v < videos - 1 else moments - MOMENTS_PER_VIDEO * (videos - 1)
            ms, ks, t = [], [], 0.0
            for _ in range(n):
                description = rng.random() < 0.2
                words = int(rng.integers(40, 121) if description else rng.integers(12, 41))
                words_total += words
                length = 10.0 if description else words / 2.5
                ms.append(Moment(t, t + length, "description" if description else "speech", maker.text(words), "en"))
                ks.append(Keyframe(t=t + length / 2, score=20.0, jpeg=jpeg, width=32, height=18))
                t += length
            catalog.add_video(
                content_id=f"bench-{seed}-{v:08d}", path=f"/library/{maker.text(3).replace(' ', '_')}_{v}.mp4",
                stat=None, info={"duration": t, "fps": 25.0, "width": 1280, "height": 720, "has_audio": True,
                                 "language": "en"},
                keyframes=ks, moments=ms,
                vectors={TEXT_SPACE: ("moment", _vectors(rng, text_centres, n)),
                         IMAGE_SPACE: ("keyframe", _vectors(rng, image_centres, n))},
                run_id=None)
            if progress and (v + 1) % max(1, videos // 20) == 0:
                print(f"  {moments:,} moments: catalog {100 * (v + 1) // videos}% "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        catalog_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        DerivedIndexes(catalog).rebuild()
        derived_s = time.perf_counter() - t1
    info = {"spec": want, "videos": videos, "words_per_moment": words_total / moments,
            "catalog_seconds": round(catalog_s, 1), "derive_seconds": round(derived_s, 1),
            "bytes": {p.name: _size(p) for p in sorted(index_dir.iterdir()) if p.name != "bench.json"}}
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def make_queries(index_dir: Path, count: int, seed: int) -> list[str]:
    """Questions made of 2-4 content words of random moments of the index."""
    import sqlite3

    from indexer.analysis import STOP_WORDS

    rng = np.random.default_rng(seed + 1)
    db = sqlite3.connect(f"{(index_dir / 'catalog.sqlite3').as_uri()}?mode=ro", uri=True)
    top = db.execute("SELECT MAX(id) FROM moments").fetchone()[0]
    queries = []
    while len(queries) < count:
        row = db.execute("SELECT text FROM moments WHERE id=?", (int(rng.integers(1, top + 1)),)).fetchone()
        if row is None:
            continue
        words = [w for w in row[0].split() if w not in STOP_WORDS and w not in FUNCTION_WORDS]
        if len(words) < 4:
            continue
        picked = [words[i] for i in sorted(rng.choice(len(words), size=int(rng.integers(2, 5)), replace=False))]
        queries.append(QUESTION_FORMS[len(queries) % len(QUESTION_FORMS)].format(" ".join(picked)))
    db.close()
    return queries


# -- measuring (in a fresh process per index) -------------------------------------------------

def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    return proc_status_kib("VmRSS") / 1024.0 or float("nan")


def clip_weights(work: Path) -> Path:
    """A random-weight open_clip ViT-B-32, saved once (the real architecture and size)."""
    path = work / "ViT-B-32-random.safetensors"
    if not path.exists():
        import open_clip
        import torch
        from safetensors.torch import save_file

        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32")
        tmp = path.with_suffix(".tmp")
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
        os.replace(tmp, path)
    return path


def measure(index_dir: Path, queries: list[str], runs: int, engine: str, vector_index: str, clip: Path) -> dict:
    """Run in a fresh process: load the models, open the index, time every query ``runs`` times."""
    import torch

    from models.hub import ModelHub, ModelsConfig, RoleConfig
    from retriever.api import RetrievalOptions, Retriever

    torch.set_num_threads(os.cpu_count() or 1)
    start_rss = _current_rss_mib()
    hub = ModelHub(ModelsConfig(profile="packaged", device="cpu", roles={
        "frame_embedder": RoleConfig(backend="open-clip", model=CLIP_MODEL, path=str(clip))}))
    t0 = time.perf_counter()
    hub.text_embedder.embed_query("warm up")
    hub.frame_embedder.embed_texts(["warm up"])
    models_s = time.perf_counter() - t0
    models_rss = _current_rss_mib()

    t0 = time.perf_counter()
    keyword_options, vector_options = _options(engine, vector_index)
    retriever = Retriever(index_dir, hub, RetrievalOptions(vector_index=vector_options, keyword_index=keyword_options))
    retriever.open_all()
    load_s = time.perf_counter() - t0
    loaded_rss = _current_rss_mib()

    for q in queries[:10]:  # warm-up: first touches of the files
        retriever.search(q, top_k=3)
    passes = []
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        latencies = []
        for q in queries:
            timings: dict[str, float] = {}
            t = time.perf_counter()
            retriever.search(q, top_k=3, timings=timings)
            latencies.append(time.perf_counter() - t)
            for k, v in timings.items():
                stages.setdefault(k, []).append(v)
        lat = np.array(latencies) * 1000
        passes.append({"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                       "max": float(lat.max())})
    return {
        "p50_ms": median(p["p50"] for p in passes), "p95_ms": median(p["p95"] for p in passes),
        "passes": passes,
        "stages_ms": {k: {"p50": float(np.percentile(v, 50)) * 1000, "p95": float(np.percentile(v, 95)) * 1000}
                      for k, v in stages.items()},
        "load_s": load_s, "models_s": models_s,
        "rss_mib": {"start": start_rss, "models": models_rss, "index_loaded": loaded_rss, "peak": _rss_mib()},
        "kinds": retriever.index_kinds(),
    }


def _child(args: argparse.Namespace) -> None:
    queries = json.loads(Path(args.child_queries).read_text())
    out = measure(Path(args.child), queries, args.runs, args.keyword_engine, args.vector_index, Path(args.child_clip))
    print("RESULT " + json.dumps(out))


def run_size(work: Path, moments: int, args: argparse.Namespace, clip: Path) -> dict:
    index_dir = work / f"m{moments}-s{args.seed}"
    t0 = time.perf_counter()
    info = generate(index_dir, moments, args.seed)
    built = derive(index_dir, moments, args.keyword_engine, args.vector_index)
    print(f"{moments:,} moments: index ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    queries = make_queries(index_dir, args.queries, args.seed)
    qfile = work / f"queries-{moments}.json"
    qfile.write_text(json.dumps(queries))
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(index_dir), "--child-queries", str(qfile), "--child-clip", str(clip),
         "--runs", str(args.runs), "--keyword-engine", args.keyword_engine, "--vector-index", args.vector_index],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"measuring {moments:,} moments failed:\n{proc.stderr[-3000:]}")
    result = json.loads(line[len("RESULT "):])
    recall = {space: vector_recall(index_dir, space, args) for space, kind in result["kinds"].items()
              if kind == "ivf"}
    return {"moments": moments, "index": info, "rebuilt": built, "queries": len(queries), **result, "recall": recall}


def vector_recall(index_dir: Path, space: str, args: argparse.Namespace) -> dict:
    """recall@10 and @100 of the space's (approximate) FAISS index against exact search, as the retriever
    searches it: 200 candidates (or k), scored again with the catalog's float32 vectors."""
    from indexer.catalog import Catalog
    from indexer.vector_index import VectorStore

    _, vector_options = _options(args.keyword_engine, args.vector_index)
    store = VectorStore(index_dir, space, vector_options).load()
    catalog = Catalog(index_dir, readonly=True)
    ids, matrix = catalog.vectors(space)
    rng = np.random.default_rng(args.seed + 2)
    picks = matrix[rng.integers(0, len(matrix), size=200)]
    queries = picks + rng.normal(scale=0.6 / np.sqrt(matrix.shape[1]), size=picks.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out = {}
    for k in (10, 100):
        hits = []
        for q in queries:
            exact = ids[np.argpartition(-(matrix @ q), k)[:k]]
            found, _ = store.search(q, max(k, 200), exact=lambda f: catalog.vectors_of(space, f))
            hits.append(len(set(exact.tolist()) & set(found[:k].tolist())) / k)
        out[f"recall@{k}"] = float(np.mean(hits))
    catalog.close()
    return out


def table(rows: list[dict]) -> str:
    out = ["| moments | engines | p50 ms | p95 ms | keyword p95 | semantic p95 | visual p95 | catalog p95 | "
           "index load s | RSS after load MiB | peak RSS MiB | vector recall@10 |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        st = r["stages_ms"]
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))
        recall = ", ".join(f"{space} {v['recall@10']:.3f}" for space, v in r["recall"].items()) or "exact"
        out.append(
            f"| {r['moments']:,} | {kinds} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{st.get('keyword', {}).get('p95', 0):.1f} | {st.get('semantic', {}).get('p95', 0):.1f} | "
            f"{st.get('visual', {}).get('p95', 0):.1f} | {st.get('catalog', {}).get('p95', 0):.1f} | "
            f"{r['load_s']:.2f} | {r['rss_mib']['index_loaded']:.0f} | {r['rss_mib']['peak']:.0f} | "
            f"{recall} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vector-index", default="auto", choices=("auto", "flat", "ivf"))
    ap.add_argument("--keyword-engine", default="auto", choices=("auto", "whoosh", "tantivy"))
    ap.add_argument("--work", default=str(RESULTS / "search-work"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-queries", help=argparse.SUPPRESS)
    ap.add_argument("--child-clip", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    clip = clip_weights(work)
    rows = [run_size(work, int(s), args, clip) for s in args.sizes.split(",")]
    data = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "runs": args.runs,
            "keyword_engine": args.keyword_engine, "vector_index": args.vector_index, "rows": rows}
    path = write_json(f"search-{args.keyword_engine}-{args.vector_index}", data)
    print(table(rows))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
