"""Page objects for the real-browser tests: what a person does on a page, named as they would
say it, so a test reads as the steps and its assertions stay in the test.

Each wraps a Playwright `Page`; none asserts anything.
"""

from __future__ import annotations


class SignInPage:
    """The sign-in form (/login)."""

    def __init__(self, page):
        self.page = page

    def open(self, base_url: str) -> SignInPage:
        self.page.goto(base_url + "/login")
        return self

    def fill(self, username: str, password: str) -> None:
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)

    def sign_in(self, username: str, password: str) -> None:
        """Fill the form and press Sign in."""
        self.fill(username, password)
        self.page.get_by_role("button", name="Sign in").click()


class PeoplePage:
    """People and roles: an admin adds a person."""

    def __init__(self, page):
        self.page = page

    def add_person(self, display_name: str, username: str, role: str, password: str) -> None:
        self.page.get_by_role("link", name="People and roles").first.click()
        self.page.get_by_role("link", name="Add a person").click()
        self.page.get_by_label("Name shown in StoryHub").fill(display_name)
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Role").select_option(role)
        self.page.get_by_label("New password", exact=True).fill(password)
        self.page.get_by_label("Type the new password again").fill(password)
        self.page.get_by_role("button", name="Create account").click()


class ChangePasswordPage:
    """Change your password (asked for at a first sign-in)."""

    def __init__(self, page):
        self.page = page

    def change(self, current: str, new: str) -> None:
        self.page.get_by_label("Current password").fill(current)
        self.page.get_by_label("New password", exact=True).fill(new)
        self.page.get_by_label("Type the new password again").fill(new)
        self.page.get_by_role("button", name="Change password").click()


class WorkshopPacksPage:
    """Workshop packs: a facilitator builds a workshop from the latest theme run."""

    def __init__(self, page):
        self.page = page

    def build_workshop(self, title: str, held_on: str, safeguarding_contact: str) -> None:
        self.page.get_by_role("link", name="Workshop packs").first.click()
        self.page.get_by_role("button", name="Build a workshop").click()
        self.page.get_by_label("Workshop title").fill(title)
        self.page.get_by_label("Date of the workshop").fill(held_on)
        self.page.get_by_label("Who to talk to if a story upsets someone").fill(
            safeguarding_contact)
        self.page.get_by_role("button", name="Create the workshop").click()
