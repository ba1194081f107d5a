"""A real browser on a phone-sized screen records a story from the (fake) microphone, gives
consent, uploads it with a progress bar, sees it listed and plays it back."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .browser import launch_chromium, live_server

pytestmark = pytest.mark.browser
SPEECH = ("Since I got out, the thing that helped most was my case manager ringing the hostel "
          "to sort my housing before my first appointment.")


@pytest.fixture
def speech_wav(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    path = tmp_path / "mic.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SPEECH], check=True)
    return path


@pytest.fixture
def server(tmp_path):
    live = live_server(tmp_path, "reporter", "rita", "amber kettle harbour 7", "Rita")
    yield live
    live.stop()


def test_reporter_records_uploads_and_plays_back(server, speech_wav, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, ["--use-fake-ui-for-media-stream",
                                      "--use-fake-device-for-media-stream",
                                      f"--use-file-for-fake-audio-capture={speech_wav}"])
        context = browser.new_context(viewport={"width": 390, "height": 844},
                                      is_mobile=True, has_touch=True)
        context.grant_permissions(["microphone"], origin=server.url)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill("amber kettle harbour 7")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Add a story").first.click()

        page.get_by_role("button", name="Start recording").click()
        expect(page.locator("#recorder-status")).to_contain_text("Recording…")
        page.wait_for_timeout(2500)
        level = page.eval_on_selector("#meter-level", "el => parseFloat(el.style.width)")
        page.get_by_role("button", name="Pause").click()
        expect(page.locator("#recorder-status")).to_contain_text("Paused")
        page.get_by_role("button", name="Resume").click()
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#recorder-status")).to_contain_text("Recorded")
        minutes, seconds = re.search(r"Recorded (\d+):(\d\d)",
                                     page.locator("#recorder-status").inner_text()).groups()
        recorded = 60 * int(minutes) + int(seconds)
        assert level > 0, "the level meter should move while the microphone hears speech"

        # Saving without consent is refused, and the recording stays on the page.
        page.get_by_label("Story title").fill("Housing sorted before the first appointment")
        page.get_by_role("button", name="Save story").click()
        expect(page.locator("#form-error")).to_contain_text("Record the storyteller's consent")

        page.get_by_label("Transcribe the recording and include it in theme analysis").check()
        page.get_by_label("Quote it, anonymised, in workshop packs").check()
        page.get_by_label("Where on the recording (minutes:seconds)").fill("0:00")
        page.screenshot(path=str(tmp_path / "story-form.png"), full_page=True)
        page.get_by_role("button", name="Save story").click()
        expect(page.get_by_text("Story saved")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("heading",
                                name="Housing sorted before the first appointment")).to_be_visible()

        duration = page.eval_on_selector(
            "audio.player",
            """el => new Promise(resolve => {
                if (el.readyState >= 1) { resolve(el.duration); return; }
                el.addEventListener('loadedmetadata', () => resolve(el.duration));
                el.load();
            })""")
        # As long as the recorder said it recorded (whole seconds, rounded down), pauses left out.
        assert recorded - 1 <= duration <= recorded + 2, (duration, recorded)
        played = page.eval_on_selector(
            "audio.player",
            """el => { el.muted = true; el.currentTime = 1.0;
                       return el.play().then(() => new Promise(r => setTimeout(
                           () => r(el.currentTime), 700))); }""")
        assert played > 1.0
        page.screenshot(path=str(tmp_path / "story-page.png"), full_page=True)

        page.get_by_role("link", name="← All stories").click()
        expect(page.get_by_role("link",
                                name="Housing sorted before the first appointment")).to_be_visible()
        browser.close()
