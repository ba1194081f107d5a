"""A real browser: upload a story, watch it transcribe, correct a word, play from a word,
mark it reviewed, and check the words the computer was unsure of — against `storyhub run`."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from storyhub.extensions import db
from storyhub.transcripts.models import Segment, Transcript, Word
from tests.support.browser import launch_chromium, live_server
from tests.support.instances import instance_app
from tests.support.pages import AddStoryPage, SignInPage, TranscriptPage
from tests.support.speech import jfk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    live = live_server(tmp_path, "reporter", "rita", "amber kettle harbour 7", "Rita",
                       worker=True, env={"STORYHUB_JOB_HEARTBEAT_SECONDS": "0.5"})
    yield live
    live.stop()


def test_upload_watch_progress_correct_and_review(server, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    audio = jfk(tmp_path)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        SignInPage(page).open(server.url).sign_in("rita", "amber kettle harbour 7")
        AddStoryPage(page).open(server.url).upload(audio, "Ask not")
        expect(page.get_by_text("Story saved")).to_be_visible(timeout=30_000)

        # The progress bar is live (no reload) until the worker finishes.
        bar = page.locator("#transcribe-bar")
        expect(bar).to_be_visible()
        values = []
        deadline = time.monotonic() + 180  # a busy 2-core machine transcribes slowly
        while time.monotonic() < deadline:
            if page.get_by_role("link", name="Check the transcript").count():
                break
            # Read in one step: the bar may go between a count and a read (a busy machine).
            try:
                value = page.evaluate(
                    "() => document.querySelector('#transcribe-bar')?.getAttribute('value')")
            except PlaywrightError as exc:  # the page reloaded as the job finished
                if "context was destroyed" not in str(exc):
                    raise
                continue
            if value is not None:
                values.append(float(value or 0))
            page.wait_for_timeout(250)
        expect(page.get_by_role("link", name="Check the transcript")).to_be_visible(
            timeout=10_000)
        assert values == sorted(values)
        page.screenshot(path=str(tmp_path / "transcribed.png"), full_page=True)

        page.get_by_role("link", name="Check the transcript").click()
        expect(page.get_by_role("heading", name="Transcript: Ask not")).to_be_visible()
        transcript = TranscriptPage(page)
        word = page.locator(".word", has_text="country").first
        start = float(word.get_attribute("data-start"))
        transcript.mute_player()
        word.click()
        page.wait_for_function(
            "([s]) => { const a = document.getElementById('player');"
            " return !a.paused && a.currentTime >= s; }", arg=[start], timeout=10_000)
        expect(page.locator(".word.current")).to_have_count(1)
        transcript.pause_player()

        # Correct a word: the passage keeps its other words' timing.
        transcript.edit_passage("Americans", "Americans all")
        expect(page.locator("#editor-status")).to_contain_text("Passage saved")
        expect(page.locator(".word.edited", has_text="all")).to_have_count(1)
        # "Mark as reviewed", or "… anyway" saying how many words the model was unsure of.
        transcript.mark_reviewed()
        expect(page.get_by_text("Transcript marked as reviewed")).to_be_visible()
        page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)
        browser.close()


@pytest.fixture
def corpus_server(tmp_path, corpus_instance):
    """`storyhub run` on a copy of the corpus, whose reporter gathered every story."""
    from tests.support.browser import LiveServer, require_chromium

    require_chromium()
    instance = tmp_path / "instance"
    database = corpus_instance.copy_to(instance)
    story_id = corpus_instance.data["ids"]["housing-1"]
    with instance_app(database, instance) as app, app.app_context():
        # Its words as the computer heard them: none checked by a person yet.
        for word in db.session.scalars(select(Word).join(Segment).join(Transcript).where(
                Transcript.story_id == story_id)):
            word.checked = False
        db.session.commit()
    live = LiveServer(instance, env={"STORYHUB_DATABASE_URL": database})
    live.story_id = story_id
    live.start()
    try:
        yield live
    finally:
        live.stop()
        corpus_instance.discard_copy(database)


def test_check_unsure_words_with_the_keyboard_and_correct_one(corpus_server, tmp_path):
    """On a phone: play an unsure word, say it is right from the keyboard, correct another,
    then mark the transcript reviewed, leaving the rest unchecked knowingly."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        SignInPage(page).open(corpus_server.url).sign_in("corpus-reporter",
                                                         "quiet lantern orchard 42")
        transcript = TranscriptPage(page).open(corpus_server.url, corpus_server.story_id)
        transcript.mute_player()
        check = page.locator("#unsure")
        expect(check.locator(".unsure-item")).to_have_count(6)
        expect(page.locator("#transcript .word.low")).to_have_count(6)

        # Play "when", then Tab to "It's right" and press Enter: the list moves on to the next.
        transcript.play_unsure_word_from_keyboard("when")
        page.wait_for_function("() => !document.getElementById('player').paused")
        page.keyboard.press("Tab")
        right = check.get_by_role("button", name=re.compile(r"^It's right\W+“when”"))
        expect(right).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#unsure-status")).to_have_text(
            "“when” marked as heard right. 5 unsure words left to check.")
        expect(check.get_by_role("button", name=re.compile("^Play “fell”"))).to_be_focused()
        expect(check.locator(".unsure-item")).to_have_count(5)
        expect(page.locator("#transcript .word.low")).to_have_count(5)

        # Correct "cut": the box opens focused on the word; Enter saves it into the passage.
        box = transcript.start_correcting_unsure_word("cut")
        expect(box).to_be_focused()
        transcript.type_correction(box, "gut")
        expect(page.locator("#unsure-status")).to_have_text(
            "Corrected to “gut”. 4 unsure words left to check.")
        expect(page.locator("#transcript .word.edited", has_text="gut")).to_have_count(1)
        expect(page.locator("#transcript .word.low")).to_have_count(4)
        expect(page.locator(".reviewed-note")).to_contain_text("Changed since it was reviewed")
        page.screenshot(path=str(tmp_path / "unsure.png"), full_page=True)

        # The correction asks for another review, which says how many words stay unchecked.
        page.reload()
        review = page.get_by_role("button", name=re.compile("^Mark reviewed anyway"))
        expect(review).to_have_text("Mark reviewed anyway, leaving 4 unsure words unchecked")
        transcript.confirm_unsure_word("fell")
        expect(review).to_have_text("Mark reviewed anyway, leaving 3 unsure words unchecked")
        transcript.mark_reviewed()
        expect(page.get_by_text("Transcript marked as reviewed")).to_be_visible()
        expect(page.locator("#unsure .unsure-item")).to_have_count(3)

        # Any word, corrected where it stands: click it, type, Enter. It keeps its time, and
        # so do the words around it; the passage box stays shut.
        words = page.locator("#transcript .segment").first.locator(".word")
        word, after = words.nth(3), words.nth(4)
        said = word.inner_text()
        start, next_start = (float(w.get_attribute("data-start")) for w in (word, after))
        box = transcript.start_correcting_word(word)
        expect(box).to_be_focused()
        transcript.type_correction(box, "zebra")
        expect(page.locator("#editor-status")).to_have_text(
            f"Corrected “{said}” to “zebra”. The words around it kept their timing.")
        fixed = page.locator("#transcript .word.edited", has_text="zebra")
        expect(fixed).to_be_focused()
        assert float(fixed.get_attribute("data-start")) == pytest.approx(start, abs=0.01)
        assert float(words.nth(4).get_attribute("data-start")) == pytest.approx(next_start,
                                                                               abs=0.01)
        expect(page.locator(".segment-edit")).to_have_count(0)
        # Escape leaves a word as it was.
        transcript.abandon_word_correction(words.nth(1), "xx")
        expect(page.locator(".word-input")).to_have_count(0)
        expect(words.nth(1)).to_be_focused()

        # Redact it: the page comes back to "Personal details", in sight below the sticky
        # player, and the reporter's own transcript marks the word with its label.
        transcript.redact("zebra", "[NAME]")
        expect(page.get_by_text("Redacted 1 word")).to_be_attached()
        heading = page.get_by_role("heading", name="Personal details")
        page.wait_for_function("() => window.scrollY > 0")
        top = heading.bounding_box()["y"]
        player = page.locator(".editor-player").bounding_box()
        assert player["y"] + player["height"] <= top < 844, (player, top)
        marked = page.locator("#transcript .word.redacted", has_text="zebra")
        expect(marked).to_have_attribute("data-label", "[NAME]")
        assert marked.evaluate("el => getComputedStyle(el, '::after').content") == '" [NAME]"'
        assert errors == []
        browser.close()
