"""A real browser: upload a story, watch it transcribe, correct a word, play from a word,
mark it reviewed — against `storyhub run` with its own worker."""

from __future__ import annotations

import pytest

from .browser import launch_chromium, live_server
from .speech import jfk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    live = live_server(tmp_path, "reporter", "rita", "amber kettle harbour 7", "Rita",
                       worker=True, env={"STORYHUB_JOB_HEARTBEAT_SECONDS": "0.5"})
    yield live
    live.stop()


def test_upload_watch_progress_correct_and_review(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    audio = jfk(tmp_path)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server.url + "/login")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill("amber kettle harbour 7")
        page.get_by_role("button", name="Sign in").click()
        page.goto(server.url + "/stories/new")
        page.get_by_label("Recording", exact=True).set_input_files(str(audio))
        page.get_by_label("Transcribe the recording and include it in theme analysis").check()
        page.get_by_label("Story title").fill("Ask not")
        page.get_by_role("button", name="Save story").click()
        expect(page.get_by_text("Story saved")).to_be_visible(timeout=30_000)

        # The progress bar is live (no reload) until the worker finishes.
        bar = page.locator("#transcribe-bar")
        expect(bar).to_be_visible()
        values = []
        for _ in range(240):
            if page.get_by_role("link", name="Check the transcript").count():
                break
            if bar.count():
                values.append(float(bar.get_attribute("value") or 0))
            page.wait_for_timeout(250)
        expect(page.get_by_role("link", name="Check the transcript")).to_be_visible()
        assert values == sorted(values)
        page.screenshot(path=str(tmp_path / "transcribed.png"), full_page=True)

        page.get_by_role("link", name="Check the transcript").click()
        expect(page.get_by_role("heading", name="Transcript: Ask not")).to_be_visible()
        word = page.locator(".word", has_text="country").first
        start = float(word.get_attribute("data-start"))
        page.eval_on_selector("#player", "el => { el.muted = true; }")
        word.click()
        page.wait_for_function(
            "([s]) => { const a = document.getElementById('player');"
            " return !a.paused && a.currentTime >= s; }", arg=[start], timeout=10_000)
        expect(page.locator(".word.current")).to_have_count(1)
        page.eval_on_selector("#player", "el => el.pause()")

        # Correct a word: the passage keeps its other words' timing.
        page.get_by_role("button", name="Edit").first.click()
        area = page.locator(".segment-edit textarea")
        text = area.input_value()
        area.fill(text.replace("Americans", "Americans all"))
        page.get_by_role("button", name="Save passage").click()
        expect(page.locator("#editor-status")).to_contain_text("Passage saved")
        expect(page.locator(".word.edited", has_text="all")).to_have_count(1)
        page.get_by_role("button", name="Mark as reviewed").click()
        expect(page.get_by_text("Transcript marked as reviewed")).to_be_visible()
        page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)
        browser.close()
