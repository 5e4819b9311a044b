"""What stemming by language costs the keyword analyzer, against the Porter-only analyzer before it.

    python benchmarks/bench_analyzer.py [--moments 4000] [--repeats 5]

Feeds both analyzers what a keyword index is fed (``indexer.keyword_index``): per video of ten
moments, the video's text (its moments one per line) and then each moment's own text. The
moments are distinct lines made from the evaluation questions (English, and the German, French
and Chinese ones of the multilingual set), so no cache sees a line twice except the one the
new analyzer keeps for a video's lines. "before" is the analyzer of ANALYZER_VERSION cjk-1
(Whoosh's StopFilter and Porter's StemFilter for every language), built from the same
tokenizer. Prints a table (median microseconds per moment over the repeats, and the ratio)
and writes benchmarks/results/analyzer.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine, median, write_json  # noqa: E402

from indexer import analysis  # noqa: E402


def _questions(name: str, english: bool | None = None) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "benchmarks" / "eval" / name).read_text(encoding="utf-8")
            .splitlines() if line.strip()]
    return [r["question"] for r in rows if english is None or (r["category"] in ("en", "cross-lingual")) == english]


def _lines(sources: list[str], n: int) -> list[str]:
    """Up to ``n`` distinct lines, each two (then three) source sentences joined."""
    combos = itertools.chain(itertools.permutations(sources, 2), itertools.permutations(sources, 3))
    return [" ".join(c) for c in itertools.islice(combos, n)]


def _before():
    from whoosh.analysis import LowercaseFilter, StemFilter, StopFilter

    return analysis.MixedTokenizer() | LowercaseFilter() | StopFilter(stoplist=analysis.STOP_WORDS, minsize=1) \
        | StemFilter()


def _feed(chain, lines: list[str]) -> int:
    terms = 0
    for v in range(0, len(lines), 10):
        moments = lines[v:v + 10]
        terms += sum(1 for _ in chain("\n".join(moments)))
        for text in moments:
            terms += sum(1 for _ in chain(text))
    return terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moments", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    sets = {"English": _lines(_questions("questions.jsonl"), args.moments),
            "German, French, Chinese": _lines(_questions("questions_multilingual.jsonl", english=False),
                                              args.moments)}
    analysis.analyzed("warm up jieba 广州")  # loads jieba and py3langid once, outside the timing
    rows = []
    for name, lines in sets.items():
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.repeats):
            for label in ("before", "after"):  # alternated, so both see the same machine load
                analysis.line_language.cache_clear()
                analysis._stem.cache_clear()
                chain = _before() if label == "before" else analysis.analyzer()
                t0 = time.perf_counter()
                _feed(chain, lines)
                times[label].append((time.perf_counter() - t0) / len(lines) * 1e6)
        before, after = median(times["before"]), median(times["after"])
        rows.append({"lines": name, "moments": len(lines), "before_us": round(before, 1),
                     "after_us": round(after, 1), "ratio": round(after / before, 2)})

    print(f"{'moments':<26} {'n':>6} {'before µs/moment':>17} {'after µs/moment':>16} {'ratio':>6}")
    for r in rows:
        print(f"{r['lines']:<26} {r['moments']:>6} {r['before_us']:>17.1f} {r['after_us']:>16.1f} {r['ratio']:>6.2f}")
    path = write_json("analyzer", {"machine": machine(), "repeats": args.repeats, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
