"""Choose how screen moments and keywords weigh in choosing videos and moments, on the tune split.

    python benchmarks/eval/tune_screen.py \\
        --set benchmarks/eval/questions.jsonl /tmp/videoqa-eval-index \\
        --set benchmarks/eval/questions_screen.jsonl /tmp/videoqa-screen-index

A title of a few words on screen for a whole video (``Our solar system``) is, for a sentence
embedder, close to many questions, and can take a question from the sentence that answers it
(docs/EVALUATION.md). Two settings are searched one after the other (each stage starts from
the previous stage's choice): ``screen_semantic_weight`` (multiplies the text-vector scores of
screen moments) and ``moment_keyword_weight`` (the keyword channel's weight when a video's
moments are ranked; ``keyword_weight`` still ranks the videos). Each set is searched on its own
library's index with every value: the vector channel alone and fused (the fusion settings as
configured), the keyword channel alone once. The English set holds questions whose answer is
spoken in a video with a title on screen, and questions whose answer is the title; the screen
set's answers are all on screen. The value chosen is the best on the tune split of all sets
together (R@1 + moment@1; ties: fewer categories where fused is below a channel, then the value
nearest the stage's first, the least change); the test split is only reported. Writes
benchmarks/results/screen_weight.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuning import QuestionSets, add_set_argument  # noqa: E402
from tune_fusion import ROOT  # noqa: E402

# The first value of each stage is the behaviour before: screen moments like speech, and moments
# ranked with the keyword weight that ranks videos.
STAGES = (("screen_semantic_weight", (1.0, 0.7, 0.5, 0.25, 0.0)), ("moment_keyword_weight", (0.3, 0.2, 0.1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_argument(parser)
    parser.add_argument("--profile", default="packaged")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "screen_weight.json")
    args = parser.parse_args()

    sets = QuestionSets(args.set, profile=args.profile)
    keyword = sets.run(semantic_weight=0.0, visual_weight=0.0)
    chosen_values = {name: values[0] for name, values in STAGES}
    results = []
    for name, values in STAGES:
        stage = []
        for value in values:
            setting = {**chosen_values, name: value}
            vectors = sets.run(**setting, keyword_weight=0.0)
            fused = sets.run(**setting)
            row: dict = {**setting, "stage": name, **sets.variant(fused, vectors, keyword)}
            row["misses"] = sorted(f"{r['set']}:{r['id']}:{'R' if not r['R@1'] else 'm'}" for r in fused
                                   if not (r["R@1"] and r["moment@1"]))
            stage.append(row)
            print(f"{name} {value:<4} | " + sets.summary(row), flush=True)
            print("   misses:", " ".join(row["misses"]) or "-", flush=True)

        def rank(r: dict, name: str = name, first: float = values[0]) -> tuple:
            return (r["fused all tune R@1"] + r["fused all tune moment@1"], -sets.tune_worse(r),
                    -abs(r[name] - first))

        chosen_values[name] = max(stage, key=rank)[name]
        print(f"chosen on tune: {name} = {chosen_values[name]}", flush=True)
        results += stage
    chosen = next(r for r in reversed(results) if all(r[n] == v for n, v in chosen_values.items()))
    sets.print_keyword_alone(keyword)
    sets.write(args.out, results, chosen)


if __name__ == "__main__":
    main()
