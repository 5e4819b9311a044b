"""End to end on the packaged models: index a library, search it, ask it, index it again."""

import json

import pytest

from tests.conftest import JFK_OFFSET

pytestmark = pytest.mark.slow

JFK_SPAN = (JFK_OFFSET + 0.2, JFK_OFFSET + 10.8)  # where the speech is in the test video


def test_first_index_indexes_everything(indexed):
    assert indexed.count("indexed") == 5 and indexed.count("failed") == 0
    roles = {m["role"] for m in indexed.models_loaded}
    assert roles == {"voice_activity", "transcriber", "text_reader", "text_embedder"}
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in indexed.results}
    assert by_name["field_day_with_speech.mp4"].language == "en"
    assert all(r.moments >= 1 and r.keyframes >= 1 for r in indexed.results)


def test_jfk_is_found_first_with_the_moment_inside_the_speech(indexed, settings_env, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    assert main(["search", "what you can do for your country", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    top = result["hits"][0]
    assert top["video"].endswith("field_day_with_speech.mp4")
    moment = top["moments"][0]
    centre = (moment["start"] + moment["end"]) / 2
    assert JFK_SPAN[0] <= centre <= JFK_SPAN[1], moment
    assert moment["kind"] == "speech" and "country" in moment["text"].lower()
    assert set(top["channels"]) == {"keyword", "semantic"}
    assert all(0.0 <= v <= 1.0 for v in top["channels"].values())


@pytest.mark.parametrize("question, video, words", [
    ("what flows down the slopes of a volcano during an eruption", "volcano_lecture.mp4", "lava"),
    ("how do I fix a flat tire", "bicycle_repair.mp4", "tire"),
    ("which planet has rings", "solar_system.mp4", "saturn"),
    ("what goes into bread dough", "bread_baking.mp4", "yeast"),
])
def test_sample_questions_find_their_video(qa, indexed, question, video, words):
    hits = qa.search(question)
    assert hits[0].name == video
    assert words in " ".join(m.text.lower() for m in hits[0].moments)


def test_ask_cites_the_moment(qa, indexed):
    answer = qa.ask("ask not what your country can do for you")
    assert answer.found
    cite = answer.citations[0]
    assert cite.name == "field_day_with_speech.mp4"
    assert JFK_SPAN[0] <= (cite.start + cite.end) / 2 <= JFK_SPAN[1]
    assert "country" in answer.answer.lower()
    data = answer.to_dict()
    assert set(data) >= {"answer", "citations", "candidates"}
    assert all(set(c) >= {"video", "answer", "score"} for c in data["candidates"])
    assert [c["score"] for c in data["candidates"]] == sorted((c["score"] for c in data["candidates"]), reverse=True)


def test_nothing_found_is_a_plain_answer(qa, indexed):
    answer = qa.ask("zzzqqq xxyyzz")
    assert not answer.found and answer.citations == []


def test_second_run_skips_everything_and_loads_no_model(indexed, library, settings_env, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    assert main(["index", str(library), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 0 and report["failed"] == 0 and report["skipped"] == 5
    assert report["models_loaded"] == []
    assert all(f["reason"] == "unchanged" for f in report["files"])
    assert main(["index", str(library)]) == 0
    assert "Nothing changed: no model was loaded." in capsys.readouterr().out


def test_batch_queries_in_order(indexed, settings_env, tmp_path, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    queries = tmp_path / "q.txt"
    queries.write_text("lava and ash\n\nsaturn rings\n(((\n")
    assert main(["search", "--queries", str(queries), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["lava and ash", "", "saturn rings", "((("]
    assert lines[0]["hits"][0]["video"].endswith("volcano_lecture.mp4")
    assert lines[1]["hits"] == []
    assert lines[2]["hits"][0]["video"].endswith("solar_system.mp4")


def test_ask_json_from_the_cli(indexed, settings_env, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    assert main(["ask", "which planet is the largest", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["citations"][0]["video"].endswith("solar_system.mp4")
    assert "jupiter" in data["answer"].lower()


def test_models_json_lists_every_role(settings_env, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["profile"] == "packaged"
    roles = {(r["role"], r["profile"]): r for r in info["roles"]}
    assert len(roles) == 16  # eight roles, two profiles
    for role in ("voice_activity", "transcriber", "text_reader", "text_embedder"):
        assert roles[(role, "packaged")]["found"]
    for r in info["roles"]:
        assert r.get("found") or r.get("reason")


def test_a_bad_file_fails_alone(settings_env, tmp_path, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(tmp_path / "index"))
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.mp4").write_text("not a video at all\n" * 20)
    (folder / "empty.mkv").write_bytes(b"")
    from tests.conftest import SAMPLE_MEDIA

    (folder / "bicycle.mp4").symlink_to(SAMPLE_MEDIA / "bicycle_repair.mp4")
    assert main(["index", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    status = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert status["bicycle.mp4"]["status"] == "indexed"
    assert status["notes.mp4"]["status"] == "failed" and "not a readable video" in status["notes.mp4"]["reason"]
    assert status["empty.mkv"]["status"] == "failed" and "empty" in status["empty.mkv"]["reason"]
    from app import VideoQA, load_settings

    library = VideoQA(load_settings()).library()
    assert sorted(f["path"].rsplit("/", 1)[-1] for f in library["failures"]) == ["empty.mkv", "notes.mp4"]
    assert [v["name"] for v in library["videos"]] == ["bicycle.mp4"]


def test_no_index_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from app.cli import main

    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
    assert main(["search", "anything"]) != 0
    err = capsys.readouterr().err
    assert "no index in" in err and "videoqa index" in err and "Traceback" not in err


def test_library_lists_videos(indexed, settings_env, capsys, monkeypatch):
    from app.cli import main

    for k, v in settings_env.items():
        monkeypatch.setenv(k, v)
    assert main(["library"]) == 0
    out = capsys.readouterr().out
    assert "volcano_lecture.mp4" in out and "5 videos indexed, 0 failed" in out
