"""Cost of the packaged text embedders, real weights: MiniLM, multilingual USE, and the two joined.

    python benchmarks/bench_text_embedders.py [--runs 5] [--documents 256]

* documents/s of ``embed_documents`` (what indexing pays per moment): the sentences of
  sample_media/ground_truth.json and the transcripts in benchmarks/eval/library.json, repeated
  to ``--documents`` texts, embedded in one call; median of ``--runs`` runs after a warm-up;
* query embedding (what each search pays): median ms of ``embed_query`` over the 100 questions
  of benchmarks/eval/questions.jsonl and questions_multilingual.jsonl, each run ``--runs`` times;
* load time, once (the first embedder also pays for importing torch).

The documents are English (and so are most questions): the by-language embedder runs both
models and the language identifier on them, its dearest case; a moment in another language
costs it USE alone.

The embedders take turns within each run, so that a change in the machine's load weighs on
all of them alike.

Every embedder is built through the model hub as the settings would build it and measured in
the same run; the ratios are against MiniLM's. Prints a table and writes
benchmarks/results/text_embedders.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_json  # noqa: E402

from models.hub import ModelHub, ModelsConfig, RoleConfig  # noqa: E402

# (label, backend, options): the baseline first
EMBEDDERS = (
    ("MiniLM (sentence-transformers)", "sentence-transformers", {}),
    ("USE multilingual (use-numpy)", "use-numpy", {}),
    ("combined (MiniLM + USE)", "combined", {}),
    ("by-language (MiniLM | USE)", "by-language", {}),
)


def _documents(count: int) -> list[str]:
    truth = json.loads((ROOT / "sample_media" / "ground_truth.json").read_text())
    texts = [s["text"] for v in truth["videos"] for s in v.get("sentences", [])]
    library = json.loads((ROOT / "benchmarks" / "eval" / "library.json").read_text())
    texts += [f["transcript"] for f in library["files"] if f.get("transcript") and "not copied" not in f["transcript"]]
    return [texts[i % len(texts)] for i in range(count)]


def _questions() -> list[str]:
    out = []
    for name in ("questions.jsonl", "questions_multilingual.jsonl"):
        for line in (ROOT / "benchmarks" / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out


def _build(backend: str, options: dict):
    return ModelHub(ModelsConfig(profile="packaged", roles={"text_embedder": RoleConfig(
        backend=backend, options={"batch_size": 16, **options})})).require("text_embedder")


def bench(embedders: list, documents: list[str], questions: list[str], runs: int) -> list[dict]:
    """Rounds in turn: in each, every embedder embeds the documents, then every question, so that
    a machine whose load changes meanwhile weighs on all of them alike."""
    loads = []
    for embedder in embedders:
        t0 = time.perf_counter()
        embedder.load()
        loads.append(time.perf_counter() - t0)
        embedder.embed_documents(documents[:16])  # warm-up
        embedder.embed_query(questions[0])
    doc_seconds: list[list[float]] = [[] for _ in embedders]
    query_ms: list[list[float]] = [[] for _ in embedders]
    for _ in range(runs):
        for i, embedder in enumerate(embedders):
            t0 = time.perf_counter()
            embedder.embed_documents(documents)
            doc_seconds[i].append(time.perf_counter() - t0)
        for question in questions:
            for i, embedder in enumerate(embedders):
                t0 = time.perf_counter()
                embedder.embed_query(question)
                query_ms[i].append((time.perf_counter() - t0) * 1000)
    return [{"model": e.model_name, "dim": e.dim, "load_s": round(load, 2),
             "documents_per_s": round(len(documents) / median(secs), 1), "query_ms_median": round(median(ms), 2)}
            for e, load, secs, ms in zip(embedders, loads, doc_seconds, query_ms)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--documents", type=int, default=256)
    args = parser.parse_args()
    documents, questions = _documents(args.documents), _questions()
    embedders = [_build(backend, options) for _, backend, options in EMBEDDERS]
    rows = [{"embedder": label, "backend": backend, **row}
            for (label, backend, _), row in zip(EMBEDDERS, bench(embedders, documents, questions, args.runs))]
    base = rows[0]
    for row in rows:
        row["documents_per_s_vs_minilm"] = round(row["documents_per_s"] / base["documents_per_s"], 3)
        row["query_ms_vs_minilm"] = round(row["query_ms_median"] / base["query_ms_median"], 3)
    print(f"{'embedder':<32} {'dim':>4} {'load s':>7} {'docs/s':>8} {'x MiniLM':>9} {'query ms':>9} {'x MiniLM':>9}")
    for r in rows:
        print(f"{r['embedder']:<32} {r['dim']:>4} {r['load_s']:>7.2f} {r['documents_per_s']:>8.1f} "
              f"{r['documents_per_s_vs_minilm']:>9.3f} {r['query_ms_median']:>9.2f} {r['query_ms_vs_minilm']:>9.3f}")
    path = write_json("text_embedders", {"machine": machine(), "runs": args.runs, "documents": len(documents),
                                         "questions": len(questions), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
