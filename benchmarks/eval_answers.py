"""Answer accuracy of the generative (packaged Qwen) and the extractive answers, and not-found.

Asks the fact questions of an evaluation set (``--category``, default speech-fact) and the
questions no video answers (``questions_unanswerable.jsonl``) through ``VideoQA.ask`` twice:
with the packaged default answerer and reranker, and with ``answerer = "extractive"`` and no
reranker (the answer before them). One JSON line per question and answerer is appended to
``--out`` as it is done (a run can be stopped and resumed: questions already there are
skipped), with every candidate and its reranker and retrieval scores, so that the winner and
found/not-found can be read off for any ``answer_threshold`` afterwards: ``--summary`` prints
the table for ``--threshold`` values, on the questions with odd and even line numbers apart
(tune on one, report on the other), choosing the winner as the answer step does.

    python benchmarks/eval_answers.py --index-dir /tmp/videoqa-eval-index [--out FILE] [--summary]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.answering import _DECLINED  # noqa: E402
from app.evaluation import answer_correct, load_questions  # noqa: E402

EVAL = ROOT / "benchmarks" / "eval"


def questions(category: str) -> list:
    facts = [q for q in load_questions(EVAL / "questions.jsonl") if q.category == category and q.answers]
    return facts + load_questions(EVAL / "questions_unanswerable.jsonl")


def run(args: argparse.Namespace) -> None:
    from app.qa import VideoQA
    from app.settings import load_settings

    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(r["id"], r["answerer"]) for r in map(json.loads, out.read_text().splitlines())}
    base = load_settings(env={}).replace(index_dir=args.index_dir, profile="packaged", device="cpu")
    variants = {"generative": VideoQA(base), "extractive": VideoQA(base.replace(answerer="extractive",
                                                                                reranker="off"))}
    variants["generative"].settings = variants["generative"].settings.replace(answer_threshold=0.0)
    for n, q in enumerate(questions(args.category), 1):
        for name, qa in variants.items():
            if (q.id, name) in done:
                continue
            t0 = time.perf_counter()
            answer = qa.ask(q.question)
            seconds = time.perf_counter() - t0
            win = answer.candidates[0] if answer.candidates else None
            row = {"n": n, "id": q.id, "answerer": name, "answerable": q.answerable, "question": q.question,
                   "answer": answer.answer, "method": answer.method, "found": answer.found,
                   "score": round(win.score, 4) if win and name == "generative" else None,
                   "correct": answer_correct(answer.answer, q.answers) if q.answerable else None,
                   "words": len(answer.answer.split()), "seconds": round(seconds, 1),
                   "candidates": [c.to_dict() for c in answer.candidates]}
            with out.open("a") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{q.id:<22} {name:<10} {seconds:5.1f}s {answer.method:<28} {answer.answer[:70]!r}", flush=True)


def _rechoose(row: dict, acceptable: list[str]) -> dict:
    """The winner as the answer step now chooses it (P("yes") times the retrieval score, for the
    packaged reranker) from the candidates a run recorded: its answer, words, score, correctness."""
    cands = row["candidates"]
    if row["answerer"] != "generative" or not cands:
        return row
    win = max(cands, key=lambda c: c["score"] * c["retrieval_score"])
    declined = all(c["method"] == "extractive-fallback" and _DECLINED.search(c.get("generated", "")) for c in cands)
    return {**row, "answer": win["answer"], "score": win["score"], "words": len(win["answer"].split()),
            "correct": answer_correct(win["answer"], acceptable) if row["answerable"] else None,
            "all_declined": declined}


def summary(args: argparse.Namespace) -> None:
    acceptable = {q.id: q.answers for q in questions(args.category)}
    latest = {(r["id"], r["answerer"]): r for r in map(json.loads, Path(args.out).read_text().splitlines())}
    rows = [_rechoose(r, acceptable.get(r["id"], [])) for r in latest.values()]
    print("| answerer | threshold | declined: not found | part | fact n | accuracy | median words | "
          "unanswerable n | found false |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    runs = [("extractive", None, False)] + [("generative", t, False) for t in args.threshold] + \
        [("generative", t, True) for t in args.threshold[:1]]
    for name, t, declined in runs:
        for part in ("odd", "even", "all"):
            sel = [r for r in rows if r["answerer"] == name and
                   (part == "all" or (r["n"] % 2 == 1) == (part == "odd"))]

            def found(r, t=t, declined=declined):
                if t is None:
                    return r["found"]
                return r["found"] and r["score"] >= t and not (declined and r.get("all_declined"))

            facts = [r for r in sel if r["answerable"]]
            none = [r for r in sel if not r["answerable"]]
            acc = sum(bool(r["correct"]) and found(r) for r in facts) / len(facts) if facts else float("nan")
            words = statistics.median(r["words"] for r in facts if found(r)) if facts else float("nan")
            flag = "yes" if declined else "no"
            print(f"| {name} | {'-' if t is None else t} | {flag} | {part} | {len(facts)} | {acc:.3f} | "
                  f"{words:.0f} | {len(none)} | {sum(not found(r) for r in none)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", default="/tmp/videoqa-eval-index")
    parser.add_argument("--category", default="speech-fact")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_answers.jsonl"))
    parser.add_argument("--summary", action="store_true", help="Only print the table of what --out holds.")
    parser.add_argument("--threshold", type=lambda v: [float(x) for x in v.split(",")],
                        default=[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    args = parser.parse_args()
    if args.summary:
        summary(args)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        run(args)


if __name__ == "__main__":
    main()
