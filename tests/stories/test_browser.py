"""A real browser on a phone-sized screen records a story from the (fake) microphone, gives
consent, uploads it with a progress bar, sees it listed and plays it back."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support.browser import launch_chromium, live_server
from tests.support.pages import AddStoryPage, SignInPage

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


def stopped(page) -> tuple[int, str]:
    """Wait for a take to stop; check its length is shown, in words and by the player; return
    its seconds (as the recorder counted them) and the player's source."""
    from playwright.sync_api import expect

    expect(page.locator("#recorder-status")).to_contain_text("Recorded")
    minutes, seconds = re.search(r"Recorded (\d+):(\d\d)",
                                 page.locator("#recorder-status").inner_text()).groups()
    recorded = 60 * int(minutes) + int(seconds)
    expect(page.locator("#rec-length")).to_have_text(f"{minutes}:{seconds}")
    # The browser's own player knows the length too (it shows it rather than 0:00).
    page.wait_for_function("() => isFinite(document.getElementById('rec-preview').duration)",
                           timeout=10_000)
    length = page.eval_on_selector("#rec-preview", "el => el.duration")
    assert recorded - 1 <= length <= recorded + 2, (length, recorded)
    return recorded, page.locator("#rec-preview").get_attribute("src")


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
        SignInPage(page).open(server.url).sign_in("rita", "amber kettle harbour 7")
        recorder = AddStoryPage(page).open_from_home()

        recorder.start_recording()
        expect(page.locator("#recorder-status")).to_contain_text("Recording…")
        page.wait_for_timeout(2500)
        level = page.eval_on_selector("#meter-level", "el => parseFloat(el.style.width)")
        recorder.pause()
        expect(page.locator("#recorder-status")).to_contain_text("Paused")
        recorder.resume()
        page.wait_for_timeout(1500)
        recorder.stop()
        recorded, first_take = stopped(page)
        assert level > 0, "the level meter should move while the microphone hears speech"

        # "Record again" (now a secondary button) asks before it deletes the take.
        again = page.get_by_role("button", name="Record again")
        assert "button-secondary" in again.get_attribute("class")
        recorder.record_again()
        expect(page.locator("#rec-confirm")).to_contain_text("Record again? This recording")
        recorder.keep_this_recording()
        expect(page.locator("#rec-confirm")).to_be_hidden()
        assert page.locator("#rec-preview").get_attribute("src") == first_take
        recorder.record_again()
        recorder.delete_it_and_record_again()
        expect(page.locator("#recorder-status")).to_contain_text("Recording…")
        expect(page.locator("#rec-take")).to_be_hidden()
        page.wait_for_timeout(2200)
        recorder.stop()
        recorded, second_take = stopped(page)
        assert second_take != first_take

        # Saving with problems lists them at the top, each linked to its field, and marks the
        # field; the recording stays on the page.
        recorder.save()
        summary = page.locator("#form-error")
        expect(summary).to_be_focused()
        expect(summary.get_by_role("link")).to_have_text(["Enter a title for the story."])
        assert page.evaluate("document.getElementById('form-error').getBoundingClientRect()"
                             ".top") < 844
        title = page.get_by_label("Story title")
        expect(title).to_have_attribute("aria-invalid", "true")
        summary.get_by_role("link", name="Enter a title for the story.").click()
        expect(title).to_be_focused()
        recorder.give_title("Housing sorted before the first appointment")
        recorder.save()
        expect(summary.get_by_role("link")).to_have_text(
            [re.compile("^Record the storyteller's consent")])
        expect(title).to_have_attribute("aria-invalid", "false")
        expect(page.locator(".field.has-error #consent_transcribe_analyse")).to_have_count(1)

        recorder.give_consent(quote=True, where="0:00")
        page.screenshot(path=str(tmp_path / "story-form.png"), full_page=True)
        recorder.save()
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
        assert_role_tables_keep_words_whole(page, server.url)
        browser.close()


# A theme card's table of who told it (themes/run.html), with every storyteller role.
ROLE_TABLE = """<ul class="cards" style="width: {width}px"><li class="card theme-card">
<table class="role-table"><thead><tr><th scope="col">Storytellers</th><th scope="col">Stories</th>
<th scope="col">Passages</th></tr></thead><tbody>{rows}</tbody></table></li></ul>"""
ROLES = ["People on probation", "Peer mentors", "Staff", "Family members", "Partner agencies"]


def assert_role_tables_keep_words_whole(page, url: str) -> None:
    """On the narrowest theme card (16rem) and wider, no word in the table is broken ("Stori
    es") and the table stays inside its card."""
    rows = "".join(f'<tr><th scope="row">{r}</th><td>{12 * i}</td><td>{140 * i}</td></tr>'
                   for i, r in enumerate(ROLES, 1))
    css = page.request.get(f"{url}/static/css/storyhub.css").text()
    page = page.context.new_page()  # a blank page: no site policy against the card's width
    for width in (256, 300, 343, 600):
        page.set_content(f"<style>{css}</style>" + ROLE_TABLE.format(width=width, rows=rows))
        broken, table, card = page.evaluate("""() => {
            const broken = [];
            for (const cell of document.querySelectorAll('.role-table th, .role-table td')) {
              const range = document.createRange();
              range.selectNodeContents(cell);
              const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
              if (lines.size > cell.textContent.trim().split(/\\s+/).length) {
                broken.push(cell.textContent); }
            }
            const card = document.querySelector('.card');
            return [broken, document.querySelector('.role-table').getBoundingClientRect().right,
                    card.getBoundingClientRect().right];
          }""")
        assert broken == [] and table <= card, (width, broken, table, card)
