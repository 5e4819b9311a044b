"""Choose the fusion on the tune split of the evaluation sets, report it on the test split.

    python benchmarks/eval/tune_fusion.py --index-dir /tmp/videoqa-ml-index \\
        benchmarks/eval/questions.jsonl benchmarks/eval/questions_multilingual.jsonl

Every variant (keyword normalisation x fusion method x keyword weight) searches every question
of the given sets on one index (the multilingual library holds the English one, so one index
serves both). For each variant it prints R@1 and moment@1 on the tune and the test split, and
whether fused is at least as good as the best single channel in every category of each split.
The variant chosen is the best on the tune split alone (R@1 + moment@1, ties to the simpler
one); the test split is only reported. Writes benchmarks/results/fusion.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import VideoQA  # noqa: E402
from app.evaluation import RANK_DEPTH, hit_metrics, load_questions  # noqa: E402

NORMS = ("query", "top")
FUSIONS = ("sum", "rrf")
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # keyword weight; semantic weight stays 1.0
KEYS = ("R@1", "moment@1")


def _metrics(qa: VideoQA, questions: list) -> list[dict]:
    rows = []
    for q in questions:
        hits = [h.to_dict() for h in qa.search(q.question, RANK_DEPTH)]
        rows.append({"id": q.id, "category": q.category, "split": q.split, **hit_metrics(q, hits)})
    return rows


def _mean(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows) / len(rows), 4) if rows else 0.0


def _never_worse(fused: list[dict], channels: dict[str, list[dict]], split: str) -> list[str]:
    """The (category, metric) where fused is below the best single channel on a split."""
    worse = []
    for cat in sorted({r["category"] for r in fused}):
        def sel(rows: list[dict], cat: str = cat) -> list[dict]:
            return [r for r in rows if r["category"] == cat and r["split"] == split]
        for key in KEYS:
            best = max(_mean(sel(rows), key) for rows in channels.values())
            if _mean(sel(fused), key) + 1e-9 < best:
                worse.append(f"{cat}:{key}")
    return worse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="+", type=Path)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--profile", default="packaged")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fusion.json")
    args = parser.parse_args()

    questions = [q for path in args.questions for q in load_questions(path)]
    base = VideoQA(index_dir=args.index_dir, profile=args.profile)
    s = base.settings
    channels = {
        "keyword": _metrics(VideoQA(s.replace(semantic_weight=0.0, visual_weight=0.0), hub=base.hub), questions),
        "vectors": _metrics(VideoQA(s.replace(keyword_weight=0.0), hub=base.hub), questions),
    }
    results = []
    for norm, fusion, weight in itertools.product(NORMS, FUSIONS, WEIGHTS):
        if weight == 0.0 and (norm, fusion) != NORMS[:1] + FUSIONS[:1]:
            continue  # keyword weight 0 is the vector channel alone, whatever the rest
        qa = VideoQA(s.replace(keyword_norm=norm, fusion=fusion, keyword_weight=weight), hub=base.hub)
        rows = _metrics(qa, questions)
        row = {"keyword_norm": norm, "fusion": fusion, "keyword_weight": weight}
        for split in ("tune", "test"):
            part = [r for r in rows if r["split"] == split]
            row.update({f"{split} {k}": _mean(part, k) for k in KEYS})
            row[f"{split} worse than a channel"] = _never_worse(rows, channels, split)
        results.append(row)
        print(f"{norm:<6} {fusion:<4} kw {weight:<4} tune R@1 {row['tune R@1']:.3f} m@1 {row['tune moment@1']:.3f}"
              f" | test R@1 {row['test R@1']:.3f} m@1 {row['test moment@1']:.3f}"
              f" | worse: tune {row['tune worse than a channel'] or '-'}"
              f" test {row['test worse than a channel'] or '-'}",
              flush=True)
    chosen = max(results, key=lambda r: (r["tune R@1"] + r["tune moment@1"], -len(r["tune worse than a channel"]),
                                         r["fusion"] == "sum", r["keyword_weight"]))
    print("chosen on tune:", {k: chosen[k] for k in ("keyword_norm", "fusion", "keyword_weight")})
    for name, rows in channels.items():
        for split in ("tune", "test"):
            part = [r for r in rows if r["split"] == split]
            print(f"{name} alone, {split}: " + " ".join(f"{k} {_mean(part, k):.3f}" for k in KEYS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"variants": results, "chosen": chosen, "questions": len(questions)}, indent=1))


if __name__ == "__main__":
    main()
