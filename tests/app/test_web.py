"""The web app without a browser: the real `videoqa serve`, its page API, media routes, login, helpers."""

import pytest

from app.web.i18n import language_of, text
from app.web.ui import safe_name
from tests.conftest import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(indexed, settings_env, tmp_path_factory):
    srv = Server({**settings_env, "VIDEOQA_LIBRARY_DIR": str(tmp_path_factory.mktemp("web-library"))})
    yield srv
    srv.stop()


def test_serve_says_where_and_serves_the_page(server):
    import urllib.request

    assert server.first_line.strip().endswith(server.url), server.first_line
    assert "videoqa" in urllib.request.urlopen(server.url, timeout=10).read().decode()


def test_ask_through_the_page_api(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    answer, cards = client.predict("what happens during an eruption", api_name="/ask")
    assert "volcano_lecture.mp4 @ " in answer and "vq-cite" in answer
    assert "volcano_lecture.mp4" in cards and "/media/keyframe/" in cards and "<mark>" in cards
    answer, _ = client.predict("   ", api_name="/ask")
    assert "Type a question first" in answer
    answer, _ = client.predict("<script>alert(1)</script> ((( \x00", api_name="/ask")
    assert "<script>" not in answer and "Traceback" not in answer


def test_media_routes_serve_only_indexed_files(server, qa):
    import urllib.error
    import urllib.request

    video = qa.library()["videos"][0]
    req = urllib.request.Request(f"{server.url}/media/video/{video['id']}", headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 206 and len(resp.read()) == 100
    for bad in ("/media/video/999999", "/media/keyframe/999999", "/media/video/..%2F..%2Fetc%2Fpasswd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + bad, timeout=10)
        assert err.value.code in (404, 422)


def test_login_protects_page_and_media(indexed, settings_env, qa):
    from fastapi.testclient import TestClient

    from app import VideoQA, load_settings
    from app.web import build_app

    web = VideoQA(load_settings(env={**settings_env, "VIDEOQA_AUTH": "ann:s3cret"}))
    client = TestClient(build_app(web))
    video_id = qa.library()["videos"][0]["id"]
    assert client.get(f"/media/video/{video_id}").status_code == 401
    assert client.post("/login", data={"username": "ann", "password": "wrong"}).status_code in (400, 401)
    assert client.post("/login", data={"username": "ann", "password": "s3cret"}).status_code == 200
    assert client.get(f"/media/video/{video_id}", headers={"Range": "bytes=0-9"}).status_code == 206


@pytest.mark.parametrize("name, safe", [
    ("../../etc/passwd.mp4", "passwd.mp4"),
    ("..\\..\\windows\\evil.MKV", "evil.mkv"),
    (".hidden.mp4", "hidden.mp4"),
    ("my holiday 'beach' \"2024\".mp4", "my_holiday_beach_2024.mp4"),
    ("海边 假期.mp4", "海边_假期.mp4"),
    ("", "video"),
    ("clip.mp4;rm -rf", "clip"),  # no video extension left: refused as not a video
])
def test_uploads_get_safe_names(name, safe):
    assert safe_name(name) == safe


def test_interface_language():
    assert language_of("auto", "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert language_of("auto", "en-GB,en;q=0.9") == "en"
    assert language_of("auto", None) == "en"
    assert language_of("zh", "en-US") == "zh"
    assert text("zh", "tab_ask") == "提问" and text("en", "done", indexed=1, skipped=0, failed=2).startswith("Done")


def test_a_moment_shows_the_sentences_around_it_apart_from_the_cited_one():
    from app.web.render import _moment
    from indexer.schema import Moment
    from retriever import Hit, ScoredMoment

    m = ScoredMoment(8.2, 12.2, "speech", "Jupiter is the largest planet.", 1.2, {"keyword": 1.0}, 7, "en",
                     context=[Moment(1.5, 5.7, "speech", "There are eight planets.", "en", 6),
                              Moment(14.7, 18.3, "speech", "Earth has one <moon>.", "en", 8)])
    hit = Hit(1, "/v/solar.mp4", "solar.mp4", 1.2, {"keyword": 1.0}, [m], 21.0)
    out = _moment(hit, m, lambda text: [(0, 7)] if text.startswith("Jupiter") else [])
    assert "00:08" in out and "<mark>Jupiter</mark>" in out
    assert out.index("There are eight planets.") < out.index("Jupiter") < out.index("Earth has one &lt;moon&gt;.")
    assert out.count("vq-context") == 2


def test_a_written_answer_shows_what_its_cited_moment_says():
    """A short written answer ("one moon.") is shown with the words of the moment it cites, so a reader
    can check it; an extractive answer, which is those words, is not repeated."""
    from app.answering import Answer, Citation
    from app.web.render import answer_html

    cite = Citation("/v/solar.mp4", "solar.mp4", 8.0, 12.4, "Jupiter is the largest planet, & Saturn has rings.")
    written = answer_html(Answer("how many moons does Jupiter have?", "one moon.", [cite], [], []), "en")
    assert "<blockquote class='vq-quote'>Jupiter is the largest planet, &amp; Saturn has rings.</blockquote>" in written
    said = answer_html(Answer("which planet has rings?", cite.text, [cite], [], []), "en")
    assert "vq-quote" not in said and "solar.mp4 @ 00:08" in said
