"""A real browser: the admin signs in, creates a reporter, and the reporter signs in."""

from __future__ import annotations

import pytest

from tests.support.browser import launch_chromium, live_server
from tests.support.pages import ChangePasswordPage, PeoplePage, SignInPage

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
        SignInPage(page).sign_in("ada", "admin passphrase 1")
        expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()

        PeoplePage(page).add_person("Rita Reporter", "rita", "reporter", "amber kettle harbour 7")
        expect(page.get_by_text("Account “rita” created as Community reporter")).to_be_visible()
        page.screenshot(path=str(tmp_path / "admin-users.png"), full_page=True)
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("You have signed out.")).to_be_visible()

        SignInPage(page).fill("rita", "amber kettle harbour 7")
        page.keyboard.press("Enter")
        # The admin asked for a new password at first sign-in.
        expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
        ChangePasswordPage(page).change("amber kettle harbour 7", "my own reporter pass")
        expect(page.get_by_role("heading", name="Hello, Rita Reporter")).to_be_visible()
        expect(page.get_by_text("Community reporter").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "reporter-home.png"), full_page=True)
        browser.close()
