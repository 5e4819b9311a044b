"""Choose the combined text embedder's weight and the semantic floor on the tune split, report the test split.

    python benchmarks/eval/tune_embedder.py \\
        --set benchmarks/eval/questions.jsonl /tmp/videoqa-eval-combined \\
        --set benchmarks/eval/questions_multilingual.jsonl /tmp/videoqa-ml-combined

Each set of questions is searched on its own library's index (the English questions on the
English library: the multilingual one adds a second reading of the MIT licence that they do
not name as gold), built with ``text_embedder = "combined"`` (MiniLM + multilingual USE). Its
document vectors do not depend on the weight (models/combined_embedder.py), so one index
scores every weight exactly: weight 1 is MiniLM alone, weight 0 USE alone, anything between
``a * cos_minilm + (1 - a) * cos_use``. For each weight and semantic floor every question of
every set is searched with the vector channel alone and fused (the fusion settings as
configured); the keyword channel alone once. Prints R@1 and moment@1 per set and split, and
the categories where fused falls below the best single channel. The variant chosen is the
best on the tune split of all sets together (R@1 + moment@1; ties: fewer categories below a
channel, then the floor and weight nearest the defaults); the test split is only reported.
Writes benchmarks/results/embedder.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_fusion import KEYS, ROOT, _mean, _metrics, _never_worse  # noqa: E402

from app import VideoQA  # noqa: E402
from app.evaluation import load_questions  # noqa: E402
from models.combined_embedder import COMBINED_WEIGHT  # noqa: E402

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # MiniLM's share; 1.0 is MiniLM alone, 0.0 USE alone
FLOORS = (0.15, 0.2, 0.25)
DEFAULT_FLOOR = 0.2


def _split_scores(rows: list[dict], sets: list[str]) -> dict:
    out = {}
    for name in sets:
        for split in ("tune", "test"):
            part = [r for r in rows if r["set"] == name and r["split"] == split]
            out.update({f"{name} {split} {k}": _mean(part, k) for k in KEYS})
    for split in ("tune", "test"):
        part = [r for r in rows if r["split"] == split]
        out.update({f"all {split} {k}": _mean(part, k) for k in KEYS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("QUESTIONS", "INDEX_DIR"),
                        help="a question file and the index of its library (repeatable)")
    parser.add_argument("--weights", type=lambda v: [float(x) for x in v.split(",")], default=WEIGHTS)
    parser.add_argument("--floors", type=lambda v: [float(x) for x in v.split(",")], default=FLOORS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embedder.json")
    args = parser.parse_args()

    sets = [Path(path).stem for path, _ in args.set]
    questions = {Path(path).stem: load_questions(path) for path, _ in args.set}
    indexes = {Path(path).stem: index for path, index in args.set}
    base = VideoQA(index_dir=indexes[sets[0]], profile="packaged", text_embedder="combined")
    embedder = base.hub.require("text_embedder")

    def run(**changes) -> list[dict]:
        """Every set searched on its own index with the settings changed as given."""
        rows = []
        for name, qs in questions.items():
            qa = VideoQA(base.settings.replace(index_dir=indexes[name], **changes), hub=base.hub)
            rows += [{**row, "set": name} for row in _metrics(qa, qs)]
        return rows

    keyword = run(semantic_weight=0.0, visual_weight=0.0)
    results = []
    for weight, floor in itertools.product(args.weights, args.floors):
        embedder.weight = weight  # query side only: the index serves every weight
        vectors = run(keyword_weight=0.0, semantic_floor=floor)
        fused = run(semantic_floor=floor)
        row: dict = {"weight": weight, "floor": floor}
        row.update({f"fused {k}": v for k, v in _split_scores(fused, sets).items()})
        row.update({f"vectors {k}": v for k, v in _split_scores(vectors, sets).items()})
        channels = {"keyword": keyword, "vectors": vectors}
        for name in sets:
            for split in ("tune", "test"):
                pick = [r for r in fused if r["set"] == name]
                row[f"{name} {split} worse than a channel"] = _never_worse(
                    pick, {c: [r for r in rows if r["set"] == name] for c, rows in channels.items()}, split)
        results.append(row)
        print(f"w {weight:<4} floor {floor:<4} | " + " | ".join(
            f"{name} fused tune {row[f'fused {name} tune R@1']:.3f}/{row[f'fused {name} tune moment@1']:.3f}"
            f" test {row[f'fused {name} test R@1']:.3f}/{row[f'fused {name} test moment@1']:.3f}"
            f" vec test {row[f'vectors {name} test R@1']:.3f}/{row[f'vectors {name} test moment@1']:.3f}"
            f" worse {row[f'{name} tune worse than a channel'] or '-'}"
            f"/{row[f'{name} test worse than a channel'] or '-'}"
            for name in sets), flush=True)

    def rank(r: dict) -> tuple:
        worse = sum(len(r[f"{name} tune worse than a channel"]) for name in sets)
        return (r["fused all tune R@1"] + r["fused all tune moment@1"], -worse, -abs(r["floor"] - DEFAULT_FLOOR),
                -abs(r["weight"] - COMBINED_WEIGHT))

    chosen = max(results, key=rank)
    print("chosen on tune:", {k: chosen[k] for k in ("weight", "floor")})
    for split in ("tune", "test"):
        print(f"keyword alone, {split}: " + " ".join(
            f"{name} {k} {_mean([r for r in keyword if r['set'] == name and r['split'] == split], k):.3f}"
            for name in sets for k in KEYS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"variants": results, "chosen": chosen, "sets": sets,
                                    "questions": {n: len(q) for n, q in questions.items()}}, indent=1))


if __name__ == "__main__":
    main()
