"""On-screen text end to end: index videos with text burned into real footage, find them by what they show."""

import json
import re

import pytest

from tests.conftest import SCREEN_VIDEOS

pytestmark = pytest.mark.slow


def _span(key):
    _, _, first, last = SCREEN_VIDEOS[key][2][0]
    return first, last


def _search_json(env, question, capsys, monkeypatch):
    from app.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["search", question, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("key, question", [
    ("scoreboard", "what was the final score"),
    ("notice", "会议通知几点开会"),  # when is the meeting (the notice): Chinese, segmented like speech
])
def test_a_question_about_on_screen_text_finds_the_video_and_the_moment(screen_qa, screen_env, capsys, monkeypatch,
                                                                         key, question):
    result = _search_json(screen_env, question, capsys, monkeypatch)
    top = result["hits"][0]
    assert top["name"] == SCREEN_VIDEOS[key][0]
    screen = [m for m in top["moments"] if m["kind"] == "screen"]
    assert screen, top["moments"]
    first, last = _span(key)
    best = screen[0]
    assert best["start"] <= first + 1.0 and best["end"] >= last - 1.0  # covers the time it was shown
    assert best["start"] >= first - 1.0 and best["end"] <= last + 1.5
    assert best["keyframe_id"] is not None  # the frame it was read from


def test_screen_moments_reach_the_answer_context_labelled(screen_qa):
    from app.answering import context_of

    hit = screen_qa.search("final score")[0]
    context = context_of(hit)
    assert re.search(r"^\[00:0[12]–00:0[67]\] \(screen\) FINAL SCORE", context, re.M), context
    answer = screen_qa.ask("what was the final score")
    assert answer.citations[0].name == SCREEN_VIDEOS["scoreboard"][0]
    assert "3-1" in answer.answer


def test_no_text_no_screen_moments_and_the_title_caption_is_read(screen_qa, screen_videos):
    from indexer.catalog import Catalog

    with Catalog(screen_qa.index_dir, readonly=True) as catalog:
        videos = {v.name: v for v in catalog.videos()}
        plain = catalog.moments_of(videos[screen_videos["plain"].name].id)
        assert [m for m in plain if m.kind == "screen"] == []
        bicycle = catalog.moments_of(videos["bicycle_repair.mp4"].id)
        kinds = {m.kind for m in bicycle}
        assert kinds == {"speech", "screen"}, bicycle


def test_screen_text_off_in_videoqa_toml(screen_videos, settings_env, tmp_path):
    """The setting as docs/SETTINGS.md shows it: a videoqa.toml holding that one line."""
    from app import VideoQA, load_settings
    from indexer.catalog import Catalog

    toml = tmp_path / "videoqa.toml"
    toml.write_text("screen_text = false\n")
    env = {**settings_env, "VIDEOQA_INDEX_DIR": str(tmp_path / "index"), "VIDEOQA_CONFIG": str(toml)}
    qa = VideoQA(load_settings(env=env))
    assert qa.index([screen_videos["scoreboard"]]).ok
    with Catalog(qa.index_dir, readonly=True) as catalog:
        (video,) = catalog.videos()
        assert [m for m in catalog.moments_of(video.id) if m.kind == "screen"] == []


def test_screen_semantic_weight_in_videoqa_toml(screen_qa, screen_env, tmp_path):
    """The setting as docs/SETTINGS.md shows it: only screen moments' text-vector scores are scaled."""
    from app import VideoQA, load_settings

    toml = tmp_path / "videoqa.toml"
    toml.write_text("screen_semantic_weight = 0.25\n")
    scaled = VideoQA(load_settings(env={**screen_env, "VIDEOQA_CONFIG": str(toml)}))
    assert scaled.settings.screen_semantic_weight == 0.25
    ratio = 0.25 / screen_qa.settings.screen_semantic_weight

    def moments(qa):
        (hit,) = [h for h in qa.search("fixing a flat bicycle tire", top_k=5) if h.name == "bicycle_repair.mp4"]
        return {(m.kind, round(m.start, 2)): m.channels["semantic"] for m in hit.moments}

    before, after = moments(screen_qa), moments(scaled)
    screen = [key for key in before if key[0] == "screen"]
    assert screen and before[screen[0]] > 0 and screen[0] in after, (before, after)
    for key, score in after.items():
        if key in before:
            assert score == pytest.approx(before[key] * (ratio if key[0] == "screen" else 1.0)), (key, before, after)
