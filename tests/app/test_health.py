"""/healthz, the route container health checks call: no login, no library details."""

from fastapi.testclient import TestClient

from app import VideoQA, load_settings
from app.web import build_app


def client_for(tmp_path, **env: str) -> TestClient:
    settings = load_settings(env={"VIDEOQA_INDEX_DIR": str(tmp_path / "index"),
                                  "VIDEOQA_CACHE_DIR": str(tmp_path / "cache"),
                                  "VIDEOQA_LIBRARY_DIR": str(tmp_path / "library"),
                                  "VIDEOQA_PROFILE": "packaged", **env})
    qa = VideoQA(settings)
    qa.ensure_index()  # as `videoqa serve` does
    return TestClient(build_app(qa))


def test_healthz_says_ok_and_the_profile(tmp_path):
    response = client_for(tmp_path).get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok", "profile": "packaged"}


def test_healthz_needs_no_login_and_tells_nothing_more(tmp_path):
    client = client_for(tmp_path, VIDEOQA_AUTH="ann:s3cret")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "profile": "packaged"}
    assert str(tmp_path) not in response.text
    # The login still guards everything else.
    assert client.get("/media/keyframe/1").status_code == 401
