"""Which packaged language identifier tells short English text from the rest? (issue 13)

    python benchmarks/eval/compare_langid.py [INDEX_DIR ...]

The texts of the evaluation sets: every question of ``questions.jsonl`` must come out English,
the English questions of ``questions_multilingual.jsonl`` and ``questions_screen.jsonl`` too,
and their questions in another language must not. With index directories, every speech moment
of their catalogs is also checked against the language Whisper gave it. Each identifier that is
installed is tried (py3langid with all its languages, py3langid restricted to USE's languages
with the English-leaning rule of ``models/language_embedder.py``, pycld2, lingua); prints the
counts and the texts each gets wrong, and writes benchmarks/results/langid.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_json  # noqa: E402

from models.language_id import ENGLISH_BELOW, LANGUAGES as USE_LANGUAGES  # noqa: E402

EVAL = ROOT / "benchmarks" / "eval"
OTHER_CATEGORIES = ("zh", "fr", "de", "screen-zh")


def _questions(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _texts() -> dict[str, tuple[list[str], bool]]:
    """{group: (texts, whether they are English)}."""
    others = [q for n in ("questions_multilingual.jsonl", "questions_screen.jsonl") for q in _questions(n)]
    non_english = [q for q in others if q["category"] in OTHER_CATEGORIES or q["id"] == "x-en-zh"]
    return {
        "English set": ([q["question"] for q in _questions("questions.jsonl")], True),
        "English questions of the multilingual and screen sets": (
            [q["question"] for q in others if q not in non_english], True),
        "their questions in another language": ([q["question"] for q in non_english], False),
    }


def _identifiers() -> dict[str, Callable[[str], bool]]:
    """{name: text -> is English}, for the identifiers that are installed."""
    out: dict[str, Callable[[str], bool]] = {}
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        pass
    else:
        every = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        out["py3langid, all languages"] = lambda t: every.classify(t)[0] == "en"
        use = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        use.set_languages(list(USE_LANGUAGES))

        def leaning(text: str) -> bool:
            lang, prob = use.classify(text)
            return lang == "en" or prob < ENGLISH_BELOW
        out[f"py3langid, USE's languages, English unless p >= {ENGLISH_BELOW}"] = leaning
    try:
        import pycld2
    except ImportError:
        pass
    else:
        out["pycld2"] = lambda t: pycld2.detect(t)[2][0][1] == "en"
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        pass
    else:
        detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
        out["lingua, all languages"] = lambda t: (
            detector.compute_language_confidence_values(t)[0].language.iso_code_639_1.name.lower() == "en")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("indexes", nargs="*", type=Path, help="index directories whose speech moments to check")
    args = parser.parse_args()
    groups = _texts()
    for index in args.indexes:
        with sqlite3.connect(f"file:{index / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT text, language FROM moments WHERE kind = 'speech' AND language IS NOT NULL")
            rows = list(rows)
        groups[f"{index.name}: speech, Whisper said English"] = ([t for t, lang in rows if lang == "en"], True)
        groups[f"{index.name}: speech, Whisper said another language"] = ([t for t, lang in rows if lang != "en"],
                                                                          False)
    results = []
    for name, is_english in _identifiers().items():
        t0 = time.perf_counter()
        row = {"identifier": name, "groups": {}}
        for group, (texts, english) in groups.items():
            wrong = [t for t in texts if is_english(t) != english]
            row["groups"][group] = {"n": len(texts), "right": len(texts) - len(wrong), "wrong": wrong}
        row["seconds"] = round(time.perf_counter() - t0, 2)
        results.append(row)
        print(f"== {name} ({row['seconds']} s)")
        for group, r in row["groups"].items():
            print(f"  {group}: {r['right']}/{r['n']}" + (f"  wrong: {r['wrong']}" if r["wrong"] else ""))
    print(f"wrote {write_json('langid', {'results': results})}")


if __name__ == "__main__":
    main()
