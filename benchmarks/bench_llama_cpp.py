"""The packaged answerer's runtime choice: llama-cpp-python on the same GGUF and the same prompts.

videoqa answers with transformers (``models/qwen_text.py``); this script measures the
alternative that was weighed against it, llama-cpp-python (a source package: pip compiles
llama.cpp when it installs it). It is not a dependency of videoqa: run it with a Python that
has llama-cpp-python installed (``pip install llama-cpp-python``), and the joined GGUF file:

    python benchmarks/bench_llama_cpp.py GGUF [--runs 3] [--threads 2]

It renders the prompt exactly as the answerer does (``answer_messages`` in the Qwen chat
format), and measures the load, the time to the first token, the
decoding rate and the peak RSS, medians over ``--runs``. Prints a table and writes
benchmarks/results/llama_cpp.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The answerer's own prompt (models.qwen_text imports torch and transformers only when it loads).
from models.qwen_text import answer_messages  # noqa: E402

CONTEXT = ("[00:00–00:08] (speech) There are eight planets in the solar system, and they all orbit the sun.\n"
           "[00:08–00:15] (speech) Jupiter is the largest planet, and Saturn is the one with rings.\n"
           "[00:15–00:21] (speech) Earth is the third planet from the sun, and it has one moon.")
QUESTIONS = ("which planet has rings?", "which planet is the largest?", "how many moons does Earth have?")


def prompt(question: str) -> str:
    """The answerer's chat in the Qwen format (the GGUF's own chat template writes the same)."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in answer_messages(question, CONTEXT))
    return turns + "<|im_start|>assistant\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    from llama_cpp import Llama

    loads = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        llm = Llama(model_path=str(args.gguf), n_ctx=2048, n_threads=args.threads, verbose=False)
        loads.append(time.perf_counter() - t0)
        del llm
    llm = Llama(model_path=str(args.gguf), n_ctx=2048, n_threads=args.threads, verbose=False)
    runs = []
    for i in range(args.runs):
        q = QUESTIONS[i % len(QUESTIONS)]
        text = prompt(q)
        n_prompt = len(llm.tokenize(text.encode(), special=True))
        llm.reset()
        t0 = time.perf_counter()
        first, pieces = None, []
        for out in llm(text, max_tokens=args.max_tokens, temperature=0.0, stop=["\n"], stream=True):
            if first is None:
                first = time.perf_counter() - t0
            pieces.append(out["choices"][0]["text"])
        total = time.perf_counter() - t0
        n = len(pieces)
        runs.append({"question": q, "prompt_tokens": n_prompt, "first_token_s": round(first or total, 3),
                     "answer_s": round(total, 3), "tokens": n,
                     "decode_tok_s": round((n - 1) / (total - first), 2) if first and n > 1 else None,
                     "answer": "".join(pieces)})
        print(json.dumps(runs[-1]), file=sys.stderr)
    row = {"load_s": round(statistics.median(loads), 3),
           "first_token_s": statistics.median(r["first_token_s"] for r in runs),
           "answer_s": statistics.median(r["answer_s"] for r in runs),
           "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs if r["decode_tok_s"]),
           "prompt_tokens": statistics.median(r["prompt_tokens"] for r in runs),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    print("| runtime | load s | first token s | answer s | decode tok/s | prompt tokens | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| llama-cpp-python ({args.threads} threads) | {row['load_s']} | {row['first_token_s']} | "
          f"{row['answer_s']} | {row['decode_tok_s']} | {row['prompt_tokens']:.0f} | {row['peak_rss_gib']} |")
    out = ROOT / "benchmarks" / "results" / "llama_cpp.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"row": row, "runs": runs, "threads": args.threads}, indent=2) + "\n")


if __name__ == "__main__":
    main()
