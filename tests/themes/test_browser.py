"""A facilitator in a real browser: theme 36 reviewed stories, rename and merge themes (asked
first) and undo the merge, see which themes staff and people on probation share, play a quote's
span, print the board, read the map — against `storyhub run` with its own worker."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.browser import LiveServer, launch_chromium, require_chromium
from tests.support.pages import SignInPage, ThemeBoardPage, ThemesPage
from tests.support.theme_corpus import BIG_CORPUS, filler, stored_corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def big_corpus_instance(database_url, migrated, tmp_path_factory):
    """An instance with the twelve corpus stories and 24 more made from their sentences."""
    from tests.support.instances import prepare_instance

    corpus = stored_corpus(tmp_path_factory.mktemp("big-corpus-speech"), BIG_CORPUS)
    instance = prepare_instance("bigcorpus", database_url, tmp_path_factory.mktemp("big"),
                                filler(corpus))
    yield instance
    instance.remove()


@pytest.fixture
def server(tmp_path, big_corpus_instance):
    """`storyhub run` with its worker, on a copy of the big corpus, and Fran the facilitator."""
    require_chromium()
    instance = tmp_path / "instance"
    database = big_corpus_instance.copy_to(instance)
    live = LiveServer(instance, worker=True, env={"STORYHUB_DATABASE_URL": database,
                                                  "STORYHUB_JOB_HEARTBEAT_SECONDS": "0.5"})
    live.cli("create-user", "fran", "--role", "facilitator", "--name", "Fran",
             "--password-stdin", input="facilitator pass 1\n")
    live.story_ids = big_corpus_instance.data["ids"]
    live.start()
    try:
        yield live
    finally:
        live.stop()
        big_corpus_instance.discard_copy(database)


def test_facilitator_themes_shapes_and_prints_the_board(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert len(server.story_ids) == 36
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        SignInPage(page).open(server.url).sign_in("fran", "facilitator pass 1")
        themes = ThemesPage(page)
        page.get_by_role("link", name="Themes").first.click()
        expect(page.get_by_text("36 stories are ready")).to_be_visible()

        started = time.monotonic()
        themes.find_themes()
        expect(page.locator("#run-bar")).to_be_visible()
        expect(page.get_by_role("heading", name="Themes from run 1")).to_be_visible(
            timeout=120_000)
        print(f"36 stories themed in {time.monotonic() - started:.1f}s, from the click to "
              "the themes page")
        cards = page.locator(".theme-card")
        found = cards.count()
        assert 3 <= found <= 8, found
        page.screenshot(path=str(tmp_path / "themes.png"), full_page=True)

        # Which themes are shared: housing is told by staff and people on probation.
        shared = page.locator("h2:has-text('Shared by staff') + ul")
        housing_label = cards.filter(has_text="hostel").first.locator(
            ".theme-title").inner_text()
        expect(shared.get_by_role("link", name=housing_label)).to_be_visible()

        work = cards.filter(has_text=re.compile("job|forklift|employ|warehouse")).first
        work_label = work.locator(".theme-title").inner_text()
        # Rename the housing theme.
        housing = cards.filter(has_text="hostel").first
        themes.rename_theme(housing, "A safe place to live",
                            "Finding and keeping somewhere to live")
        expect(page.get_by_text("Theme saved.")).to_be_visible()
        expect(page.get_by_role("heading", name="A safe place to live")).to_be_visible()

        # Merge the work theme into it (a facilitator's call), using the keyboard: StoryHub
        # asks first, on a page of its own, and the merge can be undone.
        themes.merge_from_keyboard(work_label)
        expect(page.get_by_role("heading", name=re.compile(
            f"Merge “{re.escape(work_label)}” into “A safe place to live”"))).to_be_visible()
        themes.confirm_merge_from_keyboard()
        expect(page.get_by_text("Themes merged.")).to_be_visible()
        page.get_by_role("link", name="All themes in run 1").click()
        expect(page.locator(".theme-card")).to_have_count(found - 1)
        # Undone from the list of changes: the work theme is back.
        changes = page.locator("#changes")
        expect(changes.get_by_text(f"Merged “{work_label}” into “A safe place to live”")
               ).to_be_visible()
        changes.get_by_role("button", name="Undo this change").click()
        expect(page.get_by_text(f"Undone: Merged “{work_label}”")).to_be_visible()
        expect(page.locator(".theme-card")).to_have_count(found)
        expect(cards.filter(has_text=work_label).first).to_be_visible()
        page.screenshot(path=str(tmp_path / "undone.png"), full_page=True)

        # The board: quotes with play buttons; the server sends only the quote's stretch.
        page.get_by_role("link", name="Theme board").click()
        expect(page.locator(".board-card")).to_have_count(found)
        button = page.locator(".play-span").first
        seconds = float(button.get_attribute("data-seconds"))
        # Muted, and fast (the span still ends where it should).
        ThemeBoardPage(page).play_quote(button, rate=4)
        page.wait_for_function("() => !document.getElementById('board-audio').paused",
                               timeout=10_000)
        page.wait_for_function(
            "() => document.getElementById('board-audio').paused", timeout=60_000)
        stopped, duration = page.eval_on_selector("#board-audio",
                                                  "el => [el.currentTime, el.duration]")
        assert abs(duration - seconds) < 0.5, (duration, seconds)  # the clip, not the story
        assert stopped >= duration - 0.1
        # Printing keeps the cards and drops the site's header and buttons.
        page.emulate_media(media="print")
        expect(page.locator(".site-header")).to_be_hidden()
        expect(page.locator(".play-span").first).to_be_hidden()
        expect(page.locator(".board-card").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "board-print.png"), full_page=True)
        page.emulate_media(media="screen")

        # The map: plotly draws one trace per theme; hovering shows the passage.
        page.goto(page.url.replace("/board", "/map"))
        expect(page.locator(f"#theme-map[data-ready='{found}']")).to_be_attached(
            timeout=20_000)
        expect(page.locator("#theme-map .scatterlayer .trace")).to_have_count(found)
        page.screenshot(path=str(tmp_path / "map.png"), full_page=True)
        assert not [e for e in errors if "Content Security Policy" in e], errors

        # On a phone every page fits the screen's width.
        page.set_viewport_size({"width": 390, "height": 844})
        for path in ("/themes/", "/themes/runs/1", "/themes/runs/1/board"):
            page.goto(server.url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        page.goto(server.url + "/themes/runs/1")
        page.locator(".theme-card a").first.click()
        # The click starts a navigation; read the width once the theme's page has loaded.
        page.wait_for_url(re.compile(r"/themes/runs/1/themes/\d+$"))
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(tmp_path / "theme-phone.png"), full_page=True)
        browser.close()
