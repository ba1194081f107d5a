"""Page objects for the real-browser tests: what a person does on a page, named as they would
say it, so a test reads as the steps and its assertions stay in the test.

Each wraps a Playwright `Page`; none asserts anything.
"""

from __future__ import annotations

import re


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

    def move_theme_up_from_keyboard(self, title: str) -> None:
        """Focus a theme's "Move up" button and press Enter."""
        self.page.get_by_role("button", name=f"Move {title} up").focus()
        self.page.keyboard.press("Enter")

    def download_pack(self, path) -> None:
        """Follow "Pack (PDF, A4)" and save the download to `path`."""
        with self.page.expect_download() as download:
            self.page.get_by_role("link", name="Pack (PDF, A4)").click()
        download.value.save_as(path)

    def record_action(self, agreed: str, taken_forward_by: str, status: str) -> None:
        """Record an agreed action; `status` is the label shown, e.g. "Agreed"."""
        self.page.get_by_label("What was agreed").fill(agreed)
        self.page.get_by_label("Who takes it forward").fill(taken_forward_by)
        self.page.get_by_label("Status").select_option(label=status)
        self.page.get_by_role("button", name="Record action").click()


class AddStoryPage:
    """Add a story (/stories/new): record it with the microphone or choose a recording, give
    the storyteller's consent and save."""

    def __init__(self, page):
        self.page = page

    def open(self, base_url: str) -> AddStoryPage:
        self.page.goto(base_url + "/stories/new")
        return self

    def open_from_home(self) -> AddStoryPage:
        self.page.get_by_role("link", name="Add a story").first.click()
        return self

    def start_recording(self) -> None:
        self.page.get_by_role("button", name="Start recording").click()

    def pause(self) -> None:
        self.page.get_by_role("button", name="Pause").click()

    def resume(self) -> None:
        self.page.get_by_role("button", name="Resume").click()

    def stop(self) -> None:
        self.page.get_by_role("button", name="Stop").click()

    def record_again(self) -> None:
        """Press "Record again" (StoryHub asks before it deletes the take)."""
        self.page.get_by_role("button", name="Record again").click()

    def keep_this_recording(self) -> None:
        self.page.get_by_role("button", name="Keep this recording").click()

    def delete_it_and_record_again(self) -> None:
        self.page.get_by_role("button", name="Delete it and record again").click()

    def choose_recording(self, path) -> None:
        self.page.get_by_label("Recording", exact=True).set_input_files(str(path))

    def give_consent(self, quote: bool = False, where: str | None = None) -> None:
        """Tick consent to transcribe and analyse; to quote it too if `quote`; `where` is the
        place on the recording (minutes:seconds) the consent was given."""
        self.page.get_by_label("Transcribe the recording and include it in theme analysis").check()
        if quote:
            self.page.get_by_label("Quote it, anonymised, in workshop packs").check()
        if where is not None:
            self.page.get_by_label("Where on the recording (minutes:seconds)").fill(where)

    def give_title(self, title: str) -> None:
        self.page.get_by_label("Story title").fill(title)

    def save(self) -> None:
        self.page.get_by_role("button", name="Save story").click()

    def upload(self, recording, title: str) -> None:
        """Choose a recording, give consent to transcribe it, title it and save."""
        self.choose_recording(recording)
        self.give_consent()
        self.give_title(title)
        self.save()


class TranscriptPage:
    """A story's transcript (/stories/<id>/transcript): play it, correct words and passages,
    check the words the computer was unsure of, redact, mark it reviewed."""

    def __init__(self, page):
        self.page = page

    def open(self, base_url: str, story_id: int) -> TranscriptPage:
        self.page.goto(f"{base_url}/stories/{story_id}/transcript")
        return self

    def mute_player(self) -> None:
        self.page.eval_on_selector("#player", "el => { el.muted = true; }")

    def pause_player(self) -> None:
        self.page.eval_on_selector("#player", "el => el.pause()")

    def edit_passage(self, old: str, new: str) -> None:
        """Edit the first passage, replacing `old` with `new`, and save it."""
        self.page.get_by_role("button", name="Edit").first.click()
        area = self.page.locator(".segment-edit textarea")
        area.fill(area.input_value().replace(old, new))
        self.page.get_by_role("button", name="Save passage").click()

    def mark_reviewed(self) -> None:
        """Press "Mark as reviewed" (or "Mark reviewed anyway, leaving …")."""
        self.page.get_by_role("button", name=re.compile("^Mark (as )?reviewed")).click()

    def play_unsure_word_from_keyboard(self, word: str) -> None:
        """In the list of unsure words, focus the word's Play button and press Enter."""
        self.page.locator("#unsure").get_by_role(
            "button", name=re.compile(f"^Play “{re.escape(word)}”")).focus()
        self.page.keyboard.press("Enter")

    def confirm_unsure_word(self, word: str) -> None:
        """Say an unsure word was heard right."""
        self.page.locator("#unsure").get_by_role(
            "button", name=re.compile(rf"^It's right\W+“{re.escape(word)}”")).click()

    def start_correcting_unsure_word(self, word: str):
        """Press an unsure word's Correct button; return the box that opens for it."""
        unsure = self.page.locator("#unsure")
        unsure.get_by_role("button", name=re.compile(f"^Correct “{re.escape(word)}”")).click()
        return unsure.get_by_label(f"What was said instead of “{word}”")

    def start_correcting_word(self, word):
        """Click a word (a locator) in the transcript; return the box that opens in its
        place."""
        said = word.inner_text()
        word.click()
        return self.page.get_by_role("textbox", name=re.compile("^Correct “" + re.escape(said)))

    def type_correction(self, box, text: str) -> None:
        """Type what was said into an open correction box and press Enter to save it."""
        box.fill(text)
        self.page.keyboard.press("Enter")

    def abandon_word_correction(self, word, typed: str) -> None:
        """Focus a word (a locator), press Enter to correct it, type, then press Escape."""
        word.focus()
        self.page.keyboard.press("Enter")
        self.page.keyboard.type(typed)
        self.page.keyboard.press("Escape")

    def redact(self, words: str, label: str) -> None:
        """Redact a word or phrase wherever it is said, under a label such as "[NAME]"."""
        self.page.get_by_label("Redact a word or phrase wherever it is said").fill(words)
        self.page.locator("#redact-label").select_option(label)
        self.page.get_by_role("button", name="Redact", exact=True).click()


class ThemesPage:
    """Themes: find themes in the reviewed stories, then rename and merge them."""

    def __init__(self, page):
        self.page = page

    def find_themes(self) -> None:
        self.page.get_by_role("button", name="Find themes").click()

    def rename_theme(self, card, name: str, description: str) -> None:
        """Open a theme from its card (a locator) and save a new name and description."""
        card.get_by_role("link").click()
        self.page.get_by_label("Name").fill(name)
        self.page.get_by_label("Description").fill(description)
        self.page.get_by_role("button", name="Save").click()

    def merge_from_keyboard(self, other: str) -> None:
        """On a theme's page, choose another theme to merge into it, then Tab to the button
        and press Enter (StoryHub asks first)."""
        choice = self.page.get_by_label("Merge another theme into this one")
        choice.select_option(label=other)
        choice.focus()
        self.page.keyboard.press("Tab")
        self.page.keyboard.press("Enter")

    def confirm_merge_from_keyboard(self) -> None:
        self.page.get_by_role("button", name="Merge the themes").focus()
        self.page.keyboard.press("Enter")


class ThemeBoardPage:
    """A theme run's board: each theme's quotes, with buttons that play the quote's stretch."""

    def __init__(self, page):
        self.page = page

    def play_quote(self, button, rate: float) -> None:
        """Mute the board's player, set its speed, and press a quote's play button (a
        locator)."""
        self.page.eval_on_selector(
            "#board-audio", "(el, rate) => { el.muted = true; el.defaultPlaybackRate = rate; }",
            rate)
        button.click()


class LibraryPage:
    """The staff library: search it (from home too), filter the results."""

    def __init__(self, page):
        self.page = page

    def search(self, words: str) -> None:
        self.page.get_by_label("Find stories").fill(words)
        self.page.get_by_role("button", name="Search the library").click()

    def open_filters(self) -> None:
        self.page.get_by_text("Filters", exact=True).click()

    def filter_by_teller(self, role: str) -> None:
        """Choose who told the stories (a role's value, e.g. "person_on_probation") and apply
        the filters."""
        self.page.get_by_label("Told by").select_option(role)
        self.page.get_by_role("button", name="Apply filters").click()
