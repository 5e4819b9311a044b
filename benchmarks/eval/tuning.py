"""What the tuning scripts share: question sets searched on their own indexes, scored per split.

``tune_embedder.py`` and ``tune_screen.py`` search several (questions, index) pairs with many
variants of the settings; for each variant they need the fused and vector-channel scores per
set and split, and where fused falls below a single channel. The per-question metrics and the
"below a channel" rule are ``tune_fusion.py``'s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tune_fusion import KEYS, _mean, _metrics, _never_worse

from app import VideoQA
from app.evaluation import load_questions

SPLITS = ("tune", "test")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("QUESTIONS", "INDEX_DIR"),
                        help="a question file and the index of its library (repeatable)")


def split_scores(rows: list[dict], sets: list[str]) -> dict:
    """R@1 and moment@1 per set and split, and over all sets per split."""
    out = {}
    for name in sets:
        for split in SPLITS:
            part = [r for r in rows if r["set"] == name and r["split"] == split]
            out.update({f"{name} {split} {k}": _mean(part, k) for k in KEYS})
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        out.update({f"all {split} {k}": _mean(part, k) for k in KEYS})
    return out


class QuestionSets:
    """Each question file searched on its own library's index, with one set of models for all."""

    def __init__(self, pairs: list[list[str]], **settings: Any):
        self.names = [Path(path).stem for path, _ in pairs]
        self.questions = {Path(path).stem: load_questions(path) for path, _ in pairs}
        self.indexes = {Path(path).stem: index for path, index in pairs}
        self.base = VideoQA(index_dir=self.indexes[self.names[0]], **settings)

    def run(self, **changes: Any) -> list[dict]:
        """Every set searched on its own index with the settings changed as given."""
        rows = []
        for name, qs in self.questions.items():
            qa = VideoQA(self.base.settings.replace(index_dir=self.indexes[name], **changes), hub=self.base.hub)
            rows += [{**row, "set": name} for row in _metrics(qa, qs)]
        return rows

    def variant(self, fused: list[dict], vectors: list[dict], keyword: list[dict]) -> dict:
        """A variant's scores: fused and vectors per set and split, and where fused is below a channel."""
        row = {f"fused {k}": v for k, v in split_scores(fused, self.names).items()}
        row.update({f"vectors {k}": v for k, v in split_scores(vectors, self.names).items()})
        for name in self.names:
            channels = {c: [r for r in rows if r["set"] == name] for c, rows in
                        (("keyword", keyword), ("vectors", vectors))}
            for split in SPLITS:
                row[f"{name} {split} worse than a channel"] = _never_worse(
                    [r for r in fused if r["set"] == name], channels, split)
        return row

    def tune_worse(self, row: dict) -> int:
        """How many (set, category, metric) of the tune split have fused below a channel."""
        return sum(len(row[f"{name} tune worse than a channel"]) for name in self.names)

    def summary(self, row: dict, vectors_test: bool = False) -> str:
        """One line per variant: fused tune and test per set (and the vectors' test), where it is worse."""
        return " | ".join(
            f"{s} fused tune {row[f'fused {s} tune R@1']:.3f}/{row[f'fused {s} tune moment@1']:.3f}"
            f" test {row[f'fused {s} test R@1']:.3f}/{row[f'fused {s} test moment@1']:.3f}"
            + (f" vec test {row[f'vectors {s} test R@1']:.3f}/{row[f'vectors {s} test moment@1']:.3f}"
               if vectors_test else "")
            + f" worse {row[f'{s} tune worse than a channel'] or '-'}/{row[f'{s} test worse than a channel'] or '-'}"
            for s in self.names)

    def print_keyword_alone(self, keyword: list[dict]) -> None:
        for split in SPLITS:
            print(f"keyword alone, {split}: " + " ".join(
                f"{s} {k} {_mean([r for r in keyword if r['set'] == s and r['split'] == split], k):.3f}"
                for s in self.names for k in KEYS))

    def write(self, out: Path, results: list[dict], chosen: dict) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"variants": results, "chosen": chosen, "sets": self.names,
                                   "questions": {n: len(q) for n, q in self.questions.items()}}, indent=1))
