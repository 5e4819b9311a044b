"""`videoqa eval`: its metrics agree with metrics recomputed here from `videoqa search --json`."""

import json
from pathlib import Path

import pytest

from app.evaluation import answer_correct, normalise_answer
from tests.conftest import JFK_OFFSET

pytestmark = pytest.mark.slow

QUESTIONS = [
    {"id": "jfk", "category": "exact", "question": "ask not what your country can do for you",
     "gold": [{"video": "speeches/field_day_with_speech.mp4", "start": JFK_OFFSET, "end": JFK_OFFSET + 11}],
     "answer": ["your country"]},
    {"id": "lava", "category": "fact", "question": "what flows down the slopes during an eruption",
     "gold": [{"video": "volcano_lecture.mp4", "start": 7.0, "end": 13.5}], "answer": ["red lava", "lava"]},
    {"id": "rings", "category": "fact", "question": "which planet has rings",
     "gold": [{"video": "solar_system.mp4", "start": 8.0, "end": 14.0}], "answer": ["saturn"]},
    {"id": "yeast", "category": "fact", "question": "what makes the dough rise",
     "gold": [{"video": "bread_baking.mp4"}], "answer": ["yeast"]},
    {"id": "wrong-moment", "category": "exact", "question": "planets orbit the sun",
     "gold": [{"video": "solar_system.mp4", "start": 19.0, "end": 22.0}]},
    {"id": "miss", "category": "paraphrase", "question": "mending a punctured bicycle inner tube",
     "gold": [{"video": "bread_baking.mp4"}, {"video": "no_such_video.mp4"}]},
]


def _recompute(question, hits):
    """The metrics, computed again independently of app.evaluation."""
    golds = question["gold"]
    is_gold = [any(h["video"].endswith("/" + g["video"]) for g in golds) for h in hits]
    rank = is_gold.index(True) + 1 if True in is_gold else None
    moment = 0.0
    if rank == 1 and hits[0]["moments"]:
        m = hits[0]["moments"][0]
        c, length = (m["start"] + m["end"]) / 2, m["end"] - m["start"]
        spans = [(g.get("start", -1e9), g.get("end", 1e9)) for g in golds
                 if hits[0]["video"].endswith("/" + g["video"])]
        covered = sum(max(0.0, min(m["end"], b) - max(m["start"], a)) for a, b in spans)
        if any(a <= c <= b for a, b in spans) and (length <= 0 or covered >= length / 2):
            moment = 1.0
    return {"R@1": float(rank == 1), "R@5": float(bool(rank) and rank <= 5), "MRR": 1 / rank if rank else 0.0,
            "moment@1": moment}


def _env(monkeypatch, settings_env):
    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)


def test_eval_agrees_with_search_json(indexed, settings_env, tmp_path, capsys, monkeypatch):
    from app.cli import main

    _env(monkeypatch, settings_env)
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n")
    assert main(["eval", str(qfile), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    plain = tmp_path / "questions.txt"
    plain.write_text("\n".join(q["question"] for q in QUESTIONS) + "\n")
    assert main(["search", "--queries", str(plain), "--json", "--top-k", "10"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = [_recompute(q, r["hits"]) for q, r in zip(QUESTIONS, results)]
    for key in ("R@1", "R@5", "MRR", "moment@1"):
        expected = round(sum(r[key] for r in rows) / len(rows), 4)
        assert report["overall"][key] == pytest.approx(expected), key
    assert report["overall"]["n"] == len(QUESTIONS)
    assert report["overall"]["R@1"] < 1.0  # the set has a miss: the metric can fail
    assert set(report["by_category"]) == {"exact", "fact", "paraphrase"}
    assert report["by_category"]["fact"]["n"] == 3
    assert set(report["by_channel"]) == {"keyword", "vectors", "fused"}
    assert report["by_channel"]["fused"] == {k: v for k, v in report["overall"].items()}


def test_eval_answers_and_the_table(indexed, settings_env, tmp_path, capsys, monkeypatch):
    from app.cli import main

    _env(monkeypatch, settings_env)
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in QUESTIONS[:3]) + "\n")
    assert main(["eval", str(qfile), "--answers"]) == 0
    table = capsys.readouterr().out
    assert "answer_acc" in table and "by channel" in table and "keyword" in table
    assert main(["eval", str(qfile), "--answers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 < report["overall"]["answer_acc"] <= 1.0


def test_bad_question_file_names_the_line(settings_env, tmp_path, capsys, monkeypatch):
    from app.cli import main

    _env(monkeypatch, settings_env)
    qfile = tmp_path / "bad.jsonl"
    qfile.write_text(json.dumps(QUESTIONS[0]) + "\n{\"question\": \"no gold\"}\n")
    assert main(["eval", str(qfile)]) != 0
    assert f"{qfile}:2: not a valid question" in capsys.readouterr().err


def test_moment_at_1_needs_the_moment_mostly_inside_the_gold():
    """A title on screen for the whole video has its centre in the middle sentence: that is no citation of it."""
    from app.evaluation import Gold, Question, hit_metrics

    q = Question(id="q", question="q", gold=[Gold(video="a.mp4", start=8.0, end=12.0)])

    def m1(start, end):
        return hit_metrics(q, [{"video": "/lib/a.mp4", "moments": [{"start": start, "end": end}]}])["moment@1"]

    assert m1(8.2, 12.1) == 1.0 and m1(9.0, 9.0) == 1.0  # the sentence; a keyframe inside it
    assert m1(0.0, 22.0) == 0.0  # centre 11 is inside, but 4 s of 22 are
    assert m1(10.0, 15.0) == 0.0 and m1(6.0, 11.0) == 1.0  # centre outside; centre inside with 3 s of 5


def test_answer_normalisation():
    assert normalise_answer("The  RED, lava!") == "red lava"
    assert answer_correct("It was the red lava that flowed.", ["Red lava"])
    assert not answer_correct("Lavatory", ["lava"])
    assert answer_correct("Saturn.", ["saturn"]) and not answer_correct("", ["saturn"])


def test_unanswerable_questions_load_and_are_checked(tmp_path):
    from app.evaluation import load_questions
    from models.errors import VideoQAError

    repo = Path(__file__).resolve().parents[2] / "benchmarks" / "eval" / "questions_unanswerable.jsonl"
    questions = load_questions(repo)
    assert len(questions) >= 10 and all(not q.answerable and q.gold == [] for q in questions)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answerable": false, "gold": [{"video": "a.mp4"}]}\n')
    with pytest.raises(VideoQAError, match="bad.jsonl:1: an unanswerable question has no gold video"):
        load_questions(bad)
    bad.write_text('{"question": "q", "gold": []}\n')
    with pytest.raises(VideoQAError, match='at least one gold video \\(or "answerable": false\\)'):
        load_questions(bad)
