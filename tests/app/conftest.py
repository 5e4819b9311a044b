"""Fixtures of the app tests: a library of videos with on-screen text, indexed once."""

import pytest

from tests.conftest import SAMPLE_MEDIA


@pytest.fixture(scope="session")
def screen_env(settings_env, tmp_path_factory):
    return {**settings_env, "VIDEOQA_INDEX_DIR": str(tmp_path_factory.mktemp("screen-index") / "index")}


@pytest.fixture(scope="session")
def screen_library(screen_videos, tmp_path_factory):
    """The text videos, one without text, and a narrated sample video (speech and a title caption)."""
    folder = tmp_path_factory.mktemp("screen-library")
    for video in screen_videos.values():
        (folder / video.name).symlink_to(video)
    (folder / "bicycle_repair.mp4").symlink_to(SAMPLE_MEDIA / "bicycle_repair.mp4")
    return folder


@pytest.fixture(scope="session")
def screen_qa(screen_env, screen_library):
    from app import VideoQA, load_settings

    qa = VideoQA(load_settings(env=screen_env))
    report = qa.index([screen_library])
    assert report.ok and report.count("indexed") == 4, [r.to_dict() for r in report.results]
    assert "text_reader" in {m["role"] for m in report.models_loaded}
    return qa
