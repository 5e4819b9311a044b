"""``videoqa eval``: retrieval and answer quality over a set of questions with known answers.

Questions are JSON lines::

    {"id": "q1", "question": "...", "category": "...",
     "gold": [{"video": "name or path relative to the indexed folder", "start": 12.0, "end": 18.5}],
     "answer": ["acceptable", "answers"]}

(``category`` and ``answer`` optional; several gold entries mean any of them counts.) A
question whose answer is in no video has ``"answerable": false`` and ``"gold": []``.

Metrics, overall and per category: video R@1 and R@5, MRR (over the top 10), moment@1
(the top hit is a gold video, the centre of its best moment lies inside a gold span of that
video, and at least half of the moment does: a title on screen for a whole video does not
count for the one sentence in its middle) and, with answers, answer accuracy (the normalised answer contains a
normalised acceptable answer; case, punctuation and articles ignored), ``found`` (the
answer says the library answers it), ``words`` (the answer's length) and, over the
unanswerable questions, ``not_found`` (the answer says the library does not answer it;
they have no retrieval metrics). The same retrieval metrics per channel (keyword only,
vectors only, fused) show what fusion adds.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from models.errors import VideoQAError

__all__ = ["Gold", "Question", "load_questions", "video_matches", "hit_metrics", "normalise_answer",
           "answer_correct", "evaluate", "format_report", "RANK_DEPTH"]

RANK_DEPTH = 10  # hits fetched per question (MRR looks this deep; R@5 at the first five)


@dataclass(frozen=True)
class Gold:
    video: str
    start: float | None = None
    end: float | None = None


@dataclass
class Question:
    id: str
    question: str
    gold: list[Gold]
    category: str = "all"
    answers: list[str] = field(default_factory=list)
    split: str = ""  # "tune" or "test": settings are chosen on one and reported on the other
    answerable: bool = True  # False: no video answers it, and the right answer says so


def load_questions(path: str | Path, split: str | None = None) -> list[Question]:
    """Read a JSON-lines question file; a bad line is an error naming the file and line.

    ``split``: keep only the questions of that split (their ``"split"`` field)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise VideoQAError(f"{path}: cannot read the questions ({exc.strerror or exc})") from None
    questions = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
            gold = [Gold(str(g["video"]), _opt_float(g.get("start")), _opt_float(g.get("end"))) for g in row["gold"]]
            answers = row.get("answer") or []
            answerable = row.get("answerable", True)
            if not isinstance(answerable, bool):
                raise TypeError(f"answerable must be true or false, not {answerable!r}")
            questions.append(Question(str(row.get("id", n)), str(row["question"]), gold,
                                      str(row.get("category") or "all"),
                                      [answers] if isinstance(answers, str) else [str(a) for a in answers],
                                      str(row.get("split") or ""), answerable))
        except (ValueError, KeyError, TypeError) as exc:
            raise VideoQAError(f"{where}: not a valid question ({type(exc).__name__}: {exc})") from None
        if answerable and not gold:
            raise VideoQAError(f"{where}: a question needs at least one gold video (or \"answerable\": false)")
        if not answerable and gold:
            raise VideoQAError(f"{where}: an unanswerable question has no gold video")
    if split:
        questions = [q for q in questions if q.split == split]
    if not questions:
        raise VideoQAError(f"{path}: no questions" + (f" in split {split!r}" if split else ""))
    return questions


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def video_matches(path: str, gold: str) -> bool:
    """A hit's path is the gold video: same path, or it ends with the gold's relative path or name."""
    p, g = Path(path).as_posix(), Path(gold).as_posix().lstrip("./")
    return p == g or p.endswith("/" + g)


def hit_metrics(question: Question, hits: Sequence[dict[str, Any]]) -> dict[str, float]:
    """R@1, R@5, reciprocal rank and moment@1 of one ranked list of hits (``search --json`` hits)."""
    rank = next((i for i, h in enumerate(hits, 1) if any(video_matches(h["video"], g.video) for g in question.gold)),
                None)
    moment = 0.0
    if hits and rank == 1 and hits[0]["moments"]:
        top = hits[0]
        best = top["moments"][0]
        start, end = best["start"], best["end"]
        centre = (start + end) / 2
        spans = [(-math.inf if g.start is None else g.start, math.inf if g.end is None else g.end)
                 for g in question.gold if video_matches(top["video"], g.video)]
        inside = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
        if any(a <= centre <= b for a, b in spans) and (end <= start or inside >= (end - start) / 2):
            moment = 1.0
    return {"R@1": float(rank == 1), "R@5": float(rank is not None and rank <= 5),
            "MRR": 1.0 / rank if rank else 0.0, "moment@1": moment}


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_correct(answer: str, acceptable: Sequence[str]) -> bool:
    got = f" {normalise_answer(answer)} "
    return any(f" {normalise_answer(a)} " in got for a in acceptable if normalise_answer(a))


def _mean(rows: list[dict[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """Means per metric; ``words`` (an answer's length) is a median."""
    import statistics

    out: dict[str, float] = {"n": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        if vals:
            out[k] = round(statistics.median(vals) if k == "words" else sum(vals) / len(vals), 4)
    return out


def evaluate(qa: Any, questions: Sequence[Question], *, answers: bool = False) -> dict[str, Any]:
    """Run every question; returns {"overall", "by_category", "by_channel", "questions"}."""
    from app.qa import VideoQA

    keys = ["R@1", "R@5", "MRR", "moment@1"]
    s = qa.settings
    variants = {
        "keyword": VideoQA(s.replace(semantic_weight=0.0, visual_weight=0.0), hub=qa.hub),
        "vectors": VideoQA(s.replace(keyword_weight=0.0), hub=qa.hub),
        "fused": qa,
    }
    per_question = []
    by_channel_rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for q in questions:
        row: dict[str, Any] = {}
        if not q.answerable:
            if answers:
                answer = qa.ask(q.question)
                row.update(not_found=float(not answer.found), answer=answer.answer, method=answer.method)
            per_question.append({"id": q.id, "category": q.category, **row})
            continue
        for name, variant in variants.items():
            hits = [h.to_dict() for h in variant.search(q.question, RANK_DEPTH)]
            m = hit_metrics(q, hits)
            by_channel_rows[name].append({**m, "category": q.category})
            if name == "fused":
                row.update(m)
                row["top"] = hits[0]["name"] if hits else None
        if answers and q.answers:
            answer = qa.ask(q.question)
            row.update(answer_acc=float(answer_correct(answer.answer, q.answers)), found=float(answer.found),
                       words=float(len(answer.answer.split())), answer=answer.answer, method=answer.method)
        per_question.append({"id": q.id, "category": q.category, **row})
    metric_keys = keys + (["answer_acc", "found", "words", "not_found"] if answers else [])
    categories = sorted({q.category for q in questions})
    return {
        "overall": _mean(per_question, metric_keys),
        "by_category": {c: _mean([r for r in per_question if r["category"] == c], metric_keys) for c in categories},
        "by_channel": {name: _mean(rows, keys) for name, rows in by_channel_rows.items()},
        "by_category_channel": {c: {name: _mean([r for r in rows if r["category"] == c], keys)
                                    for name, rows in by_channel_rows.items()} for c in categories},
        "questions": per_question,
    }


def format_report(report: dict[str, Any]) -> str:
    """The table ``videoqa eval`` prints."""
    keys = [k for k in ("R@1", "R@5", "MRR", "moment@1", "answer_acc", "found", "words", "not_found")
            if k in report["overall"]]
    lines = [f"{'':<22} {'n':>4} " + " ".join(f"{k:>10}" for k in keys)]

    def row(name: str, m: dict[str, float]) -> str:
        return f"{name[:22]:<22} {int(m['n']):>4} " + " ".join(
            f"{m[k]:>10.3f}" if k in m else f"{'-':>10}" for k in keys)

    lines.append(row("overall", report["overall"]))
    for name, m in report["by_category"].items():
        lines.append(row(f"  {name}", m))
    lines.append("")
    lines.append("by channel")
    for name, m in report["by_channel"].items():
        lines.append(row(f"  {name}", m))
    for category, channels in report.get("by_category_channel", {}).items():
        lines.append(f"  {category}")
        for name, m in channels.items():
            lines.append(row(f"    {name}", m))
    return "\n".join(lines) + "\n"
