"""A real browser: the admin signs in, creates a reporter, and the reporter signs in."""

from __future__ import annotations

import pytest

from tests.support.browser import launch_chromium, live_server

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    live = live_server(tmp_path, "admin", "ada", "admin passphrase 1", "Ada")
    yield live
    live.stop()


def test_admin_creates_reporter_who_signs_in(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(server.url + "/")
        expect(page).to_have_url(server.url + "/login?next=%2F")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill("admin passphrase 1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()

        page.get_by_role("link", name="People and roles").first.click()
        page.get_by_role("link", name="Add a person").click()
        page.get_by_label("Name shown in StoryHub").fill("Rita Reporter")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Role").select_option("reporter")
        page.get_by_label("New password", exact=True).fill("amber kettle harbour 7")
        page.get_by_label("Type the new password again").fill("amber kettle harbour 7")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_text("Account “rita” created as Community reporter")).to_be_visible()
        page.screenshot(path=str(tmp_path / "admin-users.png"), full_page=True)
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("You have signed out.")).to_be_visible()

        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill("amber kettle harbour 7")
        page.keyboard.press("Enter")
        # The admin asked for a new password at first sign-in.
        expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
        page.get_by_label("Current password").fill("amber kettle harbour 7")
        page.get_by_label("New password", exact=True).fill("my own reporter pass")
        page.get_by_label("Type the new password again").fill("my own reporter pass")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("heading", name="Hello, Rita Reporter")).to_be_visible()
        expect(page.get_by_text("Community reporter").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "reporter-home.png"), full_page=True)
        browser.close()
