"""The web page, served by the real `videoqa serve` command."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(indexed, settings_env):
    port = _free_port()
    env = {**os.environ, **settings_env}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    first = proc.stdout.readline()
    assert first.strip().endswith(url), first  # it says where it serves
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"videoqa serve exited: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("videoqa serve did not answer in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_page_is_served_on_localhost(server):
    html = urllib.request.urlopen(server, timeout=10).read().decode()
    assert "videoqa" in html


def test_ask_through_the_page_api(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    answer, hits = client.predict("what happens during an eruption", api_name="/ask")
    assert "volcano_lecture.mp4" in answer and "–" in answer
    assert "volcano_lecture.mp4" in hits and "data:image/jpeg;base64," in hits
    answer, _ = client.predict("   ", api_name="/ask")
    assert "Type a question" in answer
