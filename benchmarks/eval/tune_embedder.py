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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuning import QuestionSets, add_set_argument  # noqa: E402
from tune_fusion import ROOT  # noqa: E402

from models.combined_embedder import COMBINED_WEIGHT  # noqa: E402

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # MiniLM's share; 1.0 is MiniLM alone, 0.0 USE alone
FLOORS = (0.15, 0.2, 0.25)
DEFAULT_FLOOR = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_argument(parser)
    parser.add_argument("--weights", type=lambda v: [float(x) for x in v.split(",")], default=WEIGHTS)
    parser.add_argument("--floors", type=lambda v: [float(x) for x in v.split(",")], default=FLOORS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embedder.json")
    args = parser.parse_args()

    sets = QuestionSets(args.set, profile="packaged", text_embedder="combined")
    embedder = sets.base.hub.require("text_embedder")
    keyword = sets.run(semantic_weight=0.0, visual_weight=0.0)
    results = []
    for weight, floor in itertools.product(args.weights, args.floors):
        embedder.weight = weight  # query side only: the index serves every weight
        vectors = sets.run(keyword_weight=0.0, semantic_floor=floor)
        fused = sets.run(semantic_floor=floor)
        row: dict = {"weight": weight, "floor": floor, **sets.variant(fused, vectors, keyword)}
        results.append(row)
        print(f"w {weight:<4} floor {floor:<4} | " + sets.summary(row, vectors_test=True), flush=True)

    def rank(r: dict) -> tuple:
        return (r["fused all tune R@1"] + r["fused all tune moment@1"], -sets.tune_worse(r),
                -abs(r["floor"] - DEFAULT_FLOOR), -abs(r["weight"] - COMBINED_WEIGHT))

    chosen = max(results, key=rank)
    print("chosen on tune:", {k: chosen[k] for k in ("weight", "floor")})
    sets.print_keyword_alone(keyword)
    sets.write(args.out, results, chosen)


if __name__ == "__main__":
    main()
