"""A facilitator in a real browser builds a workshop pack from a theme run, reorders a theme
from the keyboard, downloads the PDF and records an agreed action — against `storyhub run`."""

from __future__ import annotations

import os

import pytest

from tests.support.browser import LiveServer, launch_chromium, require_chromium
from tests.support.factories import PASSWORD
from tests.support.pages import SignInPage, WorkshopPacksPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path, themed_instance):
    require_chromium()
    instance = tmp_path / "instance"
    database = themed_instance.copy_to(instance)
    live = LiveServer(instance, env={"STORYHUB_DATABASE_URL": database})
    live.start()
    try:
        yield live
    finally:
        live.stop()
        themed_instance.discard_copy(database)


def test_facilitator_builds_a_pack_reorders_downloads_and_records_an_action(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        SignInPage(page).open(server.url).sign_in("lead-facilitator", PASSWORD)
        packs = WorkshopPacksPage(page)
        packs.build_workshop("December workshop", "2026-12-10", "Jo, peer mentor")
        expect(page.get_by_text("Workshop created with")).to_be_visible()

        titles = page.locator(".workshop-theme .theme-title")
        second = titles.nth(1).inner_text().split(". ", 1)[1]
        # Keyboard only: focus the second theme's "Move up" and press Enter.
        packs.move_theme_up_from_keyboard(second)
        expect(page.get_by_text("Theme moved.")).to_be_visible()
        expect(titles.first).to_have_text(f"1. {second}")

        page.get_by_role("button", name="Generate the pack").click()
        expect(page.get_by_text("Pack version 1 generated.")).to_be_visible()
        shots = os.environ.get("STORYHUB_SCREENSHOTS")  # for the README: set it to a folder
        if shots:
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=f"{shots}/pack-page.png", full_page=False)
        saved = tmp_path / "pack.pdf"
        packs.download_pack(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        from pypdf import PdfReader

        text = " ".join(" ".join((pg.extract_text() or "").split())
                        for pg in PdfReader(saved).pages)
        assert f"Theme 1: {second}" in text and "Jo, peer mentor" in text

        packs.record_action("Appointments near the hostel on Tuesdays", "Reception team",
                            "Agreed")
        expect(page.get_by_text("Action recorded.")).to_be_visible()
        page.get_by_role("link", name="“You said, we did” sheet").click()
        expect(page.get_by_text("Appointments near the hostel on Tuesdays")).to_be_visible()
        assert errors == []
        browser.close()
