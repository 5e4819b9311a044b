"""Answer accuracy of the generative (packaged Qwen) and the extractive answers, and not-found.

Asks the fact questions of an evaluation set (``--category``, default speech-fact) and the
questions no video answers (``questions_unanswerable.jsonl``) through ``VideoQA.ask`` twice:
with the packaged answerer and reranker, and with ``answerer = "extractive"`` and no reranker
(the answer before them). One JSON line per question and answerer is appended to ``--out`` as
it is done (a run can be stopped and resumed: questions already there are skipped).

The generative run never lets the answerer decline (``decline_gate`` above 1) nor falls back for
citing another line than its video's best moment, and records, for every candidate, its P of
declining (``decline_p``), the probability of its answer's least likely token (``answer_p``), its
reranker and retrieval scores, its video's best moment, and the reranker's score of its video's
extractive answer (what the candidate becomes when it declines or falls back). So the winner and
found/not-found are read off afterwards for any ``decline_gate``, ``answer_threshold``,
``not_found_when_declined`` and ``answer_from_best_moment``, and for a floor on ``answer_p`` (an
experiment: ``--confidence``; no setting), choosing as the answer step does:
``--summary`` prints the table for the questions' ``split`` (tune, test) and all (choose on
tune, report test).

    python benchmarks/eval_answers.py --index-dir /tmp/videoqa-eval-index [--out FILE] [--summary]
        [--answerer-model Qwen2.5-Coder-1.5B-Instruct-GGUF] [--split test]
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

from app.answering import _DECLINED, repeats_question  # noqa: E402
from app.evaluation import answer_correct, load_questions  # noqa: E402

EVAL = ROOT / "benchmarks" / "eval"


def questions(category: str, split: str | None = None) -> list:
    """The fact questions and the unanswerable ones, taken in turn (a run cut short holds both kinds);
    ``split``: only that split's."""
    facts = [q for q in load_questions(EVAL / "questions.jsonl", split) if q.category == category and q.answers]
    none = load_questions(EVAL / "questions_unanswerable.jsonl", split)
    turns = [q for pair in zip(facts, none) for q in pair]
    return turns + facts[len(none):] + none[len(facts):]


def run(args: argparse.Namespace) -> None:
    from app.answering import _document, _extractive
    from app.qa import VideoQA
    from app.settings import load_settings

    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(r["id"], r["answerer"]) for r in map(json.loads, out.read_text().splitlines())}
    base = load_settings(env={}).replace(index_dir=args.index_dir, profile="packaged", device="cpu",
                                         answerer_model=args.answerer_model)
    if args.quantization:
        base = base.replace(answerer_quantization=args.quantization)
    variants = {"generative": VideoQA(base.replace(answer_threshold=0.0, decline_gate=2.0,
                                                   not_found_when_declined=False, answer_from_best_moment=False)),
                "extractive": VideoQA(base.replace(answerer="extractive", reranker="off"))}
    for n, q in enumerate(questions(args.category, args.split), 1):
        for name, qa in variants.items():
            if (q.id, name) in done:
                continue
            t0 = time.perf_counter()
            answer = qa.ask(q.question)
            seconds = time.perf_counter() - t0
            win = answer.candidates[0] if answer.candidates else None
            candidates = [c.to_dict() for c in answer.candidates]
            if name == "generative" and candidates:
                # What each candidate becomes when its answerer declines: its video's extractive answer.
                fallback = {c.video: c for c in map(_extractive, answer.hits) if c is not None}
                todo = [c for c in candidates if c["method"] == "generative"]  # the others are their fallback
                scores = qa.hub.reranker.score(q.question, [_document(fallback[c["video"]]) for c in todo]) \
                    if todo else []
                for c in candidates:
                    best = fallback[c["video"]].citations[0]  # its video's best moment
                    c.update(fallback_answer=fallback[c["video"]].answer, fallback_score=c["score"],
                             best_moment=[round(best.start, 3), round(best.end, 3)])
                for c, s in zip(todo, scores):
                    c["fallback_score"] = round(float(s), 6)
            row = {"n": n, "id": q.id, "split": q.split, "answerer": name, "answerable": q.answerable,
                   "question": q.question, "answer": answer.answer, "method": answer.method, "found": answer.found,
                   "score": round(win.score, 4) if win and name == "generative" else None,
                   "correct": answer_correct(answer.answer, q.answers) if q.answerable else None,
                   "words": len(answer.answer.split()), "seconds": round(seconds, 1), "candidates": candidates}
            with out.open("a") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{q.id:<22} {name:<10} {seconds:5.1f}s {answer.method:<28} {answer.answer[:70]!r}", flush=True)


def _declined(c: dict, gate: float) -> bool:
    """Whether the answerer declines for this candidate's video with ``decline_gate`` = gate."""
    p = c.get("decline_p")
    return (p is not None and 0 < gate <= p) or bool(_DECLINED.search(c.get("generated", "")))


def _unsure(c: dict, confidence: float, best_moment: bool) -> bool:
    """Whether a generative answer is less sure than the floor ``confidence`` on ``answer_p``, or (with
    ``best_moment``, for ``answer_from_best_moment``) cites none of its video's best moment."""
    if c["method"] != "generative":
        return False
    p = c.get("answer_p")
    cited = [[round(x["start"], 3), round(x["end"], 3)] for x in c.get("citations", [])]
    return (p is not None and p < confidence) or (best_moment and c.get("best_moment") not in cited)


def _with_best_moments(rows: list[dict]) -> list[dict]:
    """Runs before ``best_moment`` was recorded: each video's best moment is what its extractive
    candidate of the same question cites (same index, same retrieval)."""
    extractive = {r["id"]: r for r in rows if r["answerer"] == "extractive"}
    for r in rows:
        other = extractive.get(r["id"])
        if r["answerer"] != "generative" or other is None:
            continue
        best = {c["video"]: [round(c["citations"][0]["start"], 3), round(c["citations"][0]["end"], 3)]
                for c in other["candidates"] if c["citations"]}
        for c in r["candidates"]:
            c.setdefault("best_moment", best.get(c["video"]))
    return rows


def rechoose(row: dict, acceptable: list[str], gate: float, threshold: float, declined_rule: bool,
             confidence: float = 0.0, unsure_declines: bool = False, best_moment: bool = False) -> dict:
    """The answer the answer step gives with these settings, from the candidates a run recorded:
    a candidate that declines, only repeats the question, is less sure than ``confidence`` or
    (``best_moment``) does not cite its video's best moment becomes its video's extractive answer
    (and its reranker score); with ``unsure_declines`` such an unsure one counts as declined too
    (for ``not_found_when_declined``);
    the winner has the best reranker score times retrieval score (the packaged reranker)."""
    if row["answerer"] != "generative":
        return row
    cands = []
    for c in row["candidates"]:
        unsure = _unsure(c, confidence, best_moment)
        declined = _declined(c, gate) or (unsure and unsure_declines)
        repeats = c["method"] == "generative" and repeats_question(c["answer"], row["question"])
        if (declined or repeats or unsure) and "fallback_answer" in c:
            c = {**c, "answer": c["fallback_answer"], "score": c["fallback_score"]}
        cands.append({**c, "declined": declined})
    if not cands:
        return {**row, "found": False}
    win = max(cands, key=lambda c: c["score"] * c["retrieval_score"])
    found = win["score"] >= threshold and not (declined_rule and all(c["declined"] for c in cands))
    return {**row, "answer": win["answer"], "score": win["score"], "words": len(win["answer"].split()),
            "correct": answer_correct(win["answer"], acceptable) if row["answerable"] else None, "found": found}


def summary(args: argparse.Namespace) -> None:
    acceptable = {q.id: q.answers for q in questions(args.category)}
    latest = {(r["id"], r["answerer"]): r for r in map(json.loads, Path(args.out).read_text().splitlines())}
    print("| answerer | decline_gate | answer_threshold | not_found_when_declined | answer_p floor | "
          "answer_from_best_moment | unsure declines | split | fact n | accuracy | median words | unanswerable n "
          "| found false |")
    print("|---|---:|---:|---|---:|---|---|---|---:|---:|---:|---:|---:|")
    runs = [("extractive", None, None, False, None, False, False)] + [
        ("generative", g, t, d, c, b, u) for g in args.gate for t in args.threshold for d in (False, True)
        for c in args.confidence for b in (False, True) for u in ((False, True) if (c > 0 or b) and d else (False,))]
    tune = {}
    _with_best_moments(list(latest.values()))
    for name, gate, t, declined, conf, best_moment, unsure in runs:
        rows = [rechoose(r, acceptable.get(r["id"], []), gate, t, declined, conf, unsure, best_moment)
                if name == "generative" else r for r in latest.values() if r["answerer"] == name]
        for part in ("tune", "test", "all"):
            sel = [r for r in rows if part == "all" or r.get("split") == part]
            facts = [r for r in sel if r["answerable"]]
            none = [r for r in sel if not r["answerable"]]
            acc = sum(bool(r["correct"]) and r["found"] for r in facts) / len(facts) if facts else float("nan")
            said = [r["words"] for r in facts if r["found"]]
            words = statistics.median(said) if said else float("nan")
            not_found = sum(not r["found"] for r in none) / len(none) if none else float("nan")
            if part == "tune":
                tune[(name, gate, t, declined, conf, best_moment, unsure)] = (acc, words, not_found)
            def yes_no(v: bool, name: str = name) -> str:
                return "-" if name == "extractive" else ("yes" if v else "no")

            print(f"| {name} | {'-' if gate is None else gate} | {'-' if t is None else t} | {yes_no(declined)} | "
                  f"{'-' if conf is None else conf} | {yes_no(best_moment)} | {yes_no(unsure)} | {part} | "
                  f"{len(facts)} | "
                  f"{acc:.3f} | {words:.0f} | {len(none)} | {sum(not r['found'] for r in none)} |")
    # Chosen on tune alone: both targets met (accuracy at least the extractive answer's, at most 30
    # words, at least 80% not found), then the most accurate, then the most not found.
    floor = tune[runs[0]][0]
    meets = [k for k, (acc, words, nf) in tune.items() if k[0] == "generative" and acc >= floor and words <= 30
             and nf >= 0.8]
    best = max(meets or [k for k in tune if k[0] == "generative"], key=lambda k: (tune[k][0], tune[k][2]))
    print(f"\nchosen on tune ({'both targets met' if meets else 'no setting meets both'}): decline_gate "
          f"{best[1]}, answer_threshold {best[2]}, not_found_when_declined {best[3]}, answer_p floor {best[4]}, "
          f"answer_from_best_moment {best[5]}, unsure declines {best[6]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", default="/tmp/videoqa-eval-index")
    parser.add_argument("--category", default="speech-fact")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_answers.jsonl"))
    parser.add_argument("--summary", action="store_true", help="Only print the table of what --out holds.")
    parser.add_argument("--answerer-model", default=None,
                        help="answerer_model (the packaged reranker takes the same), e.g. "
                             "Qwen2.5-Coder-1.5B-Instruct-GGUF; default: the packaged default")
    parser.add_argument("--quantization", default=None, choices=("none", "int8"),
                        help="answerer_quantization (default: the setting's default)")
    parser.add_argument("--split", default=None, help="Ask only this split's questions (tune, test) first; "
                        "a later run without it adds the others")
    floats = lambda v: [float(x) for x in v.split(",")]  # noqa: E731
    parser.add_argument("--threshold", type=floats, default=[0.0, 0.2], help="answer_threshold values")
    parser.add_argument("--gate", type=floats, default=[0.3, 0.5, 0.7, 0.9, 2.0], help="decline_gate values")
    parser.add_argument("--confidence", type=floats, default=[0.0],
                        help="floors on answer_p to try (an answer whose least likely token is below it falls back; "
                             "an experiment, no setting: docs/EVALUATION.md)")
    args = parser.parse_args()
    if args.summary:
        summary(args)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        run(args)


if __name__ == "__main__":
    main()
