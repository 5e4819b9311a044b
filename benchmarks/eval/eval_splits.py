"""Every evaluation set on its index, per split, category and channel, with one text embedder.

    python benchmarks/eval/eval_splits.py --text-embedder by-language \\
        --set benchmarks/eval/questions.jsonl /tmp/videoqa-eval-index \\
        --set benchmarks/eval/questions_multilingual.jsonl /tmp/videoqa-ml-index --out by-language.json

What ``videoqa eval QUESTIONS --index-dir INDEX --split S --json`` gives, for every set and both
splits (and both together) in one process, so that the models load once. For each (set, split)
prints R@1 / moment@1 overall and per category for the fused search and each channel alone, and
the (category, metric) pairs where fused is below the best channel. Writes the reports as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import VideoQA  # noqa: E402
from app.evaluation import evaluate, load_questions  # noqa: E402

KEYS = ("R@1", "moment@1")


def below_best(report: dict) -> list[str]:
    """(category:metric) where the fused search is below the best single channel."""
    out = []
    for cat, channels in report["by_category_channel"].items():
        for key in KEYS:
            best = max(channels[c].get(key, 0.0) for c in ("keyword", "vectors"))
            if channels["fused"].get(key, 0.0) + 1e-9 < best:
                out.append(f"{cat}:{key}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("QUESTIONS", "INDEX"))
    parser.add_argument("--text-embedder", default=None, help="backend name (default: the profile's)")
    parser.add_argument("--profile", default="packaged")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    hub = None
    results = {}
    for questions, index in args.set:
        qa = VideoQA(index_dir=index, profile=args.profile, text_embedder=args.text_embedder, hub=hub)
        hub = qa.hub  # one set of models for every index
        # Searches never rebuild the derived indexes: bring them up to date first (e.g. after the
        # keyword analyzer's version changed), as `videoqa serve` does, so the new terms are measured.
        qa.ensure_index()
        every = load_questions(questions)
        splits = ("tune", "test", None) if any(q.split for q in every) else (None,)  # a set may have none
        for split in splits:
            report = evaluate(qa, load_questions(questions, split) if split else every)
            report.pop("questions")
            report["below_best_channel"] = below_best(report)
            name = f"{Path(questions).stem} on {Path(index).name} [{split or 'all'}]"
            results[name] = report
            o = report["overall"]
            print(f"{name}: n={int(o['n'])} R@1 {o['R@1']:.3f} m@1 {o['moment@1']:.3f}  "
                  f"fused<channel: {', '.join(report['below_best_channel']) or '-'}")
            for cat, channels in report["by_category_channel"].items():
                print(f"    {cat:<18} " + "  ".join(
                    f"{c} {channels[c]['R@1']:.3f}/{channels[c]['moment@1']:.3f}" for c in ("fused", "keyword",
                                                                                               "vectors")))
            print(f"    {'channels':<18} " + "  ".join(
                f"{c} {m['R@1']:.3f}/{m['moment@1']:.3f}" for c, m in report["by_channel"].items()), flush=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
