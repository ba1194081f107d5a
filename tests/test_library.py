"""The staff library: curation, who sees what, search by words and by meaning, no identity.

One prepared instance for the module: the twelve corpus stories (real intake, reviewed
transcripts), most approved by a facilitator (which embeds their passages with the real
all-MiniLM-L6-v2, once), a finished theme run written in directly, and a few stories whose
consent or curation keeps them out. Each test starts from a copy of it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from storyhub import policy
from storyhub.accounts.models import Role, User
from storyhub.audit import AuditEvent
from storyhub.database import utcnow
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.library import service
from storyhub.library.models import CurationState, LibraryEntry
from storyhub.stories.models import Story, StorytellerIdentity
from storyhub.themes.models import Passage, Theme, ThemePassage, ThemeRun
from storyhub.transcripts.models import Transcript

from .conftest import PASSWORD
from .instances import PreparedInstance, instance_app

APPROVED = ["housing-1", "housing-2", "housing-3", "work-1", "work-2", "work-3", "drugs-1",
            "drugs-2", "officer-1", "officer-2"]
DRAFT = "officer-3"  # summary written, never approved
NO_LIBRARY_CONSENT = "drugs-3"  # the storyteller did not agree to the library
NOT_TO_BE_HEARD = "work-3"  # in the library, but not agreed to being played
REAL_NAME = "Bartholomew Quince"  # housing-1's storyteller, stored with their agreement
SPEAKER_NAME = "Barty"  # what the reporter named housing-1's speaker
REDACTED_WORD = "guarantor"  # said only in housing-3, redacted there as a name
HOUSING = {"housing-1", "housing-2", "housing-3"}


def _facilitator(app) -> int:
    from storyhub.accounts import service as accounts

    with app.app_context():
        user = accounts.create_user("curator", "Cora Curator", Role.FACILITATOR,
                                    "curator pass phrase")
        db.session.commit()
        return user.id


def _write_theme_run(ids: dict[str, int]) -> dict[str, int]:
    """A finished theme run, one theme per corpus theme (as a run would find them)."""
    job = Job(kind="themes", status=JobStatus.DONE, progress=100.0)
    db.session.add(job)
    db.session.flush()
    run = ThemeRun(number=1, job_id=job.id, finished_at=utcnow())
    db.session.add(run)
    db.session.flush()
    themes = {}
    for number, (name, label) in enumerate([("housing", "Housing and hostels"),
                                            ("work", "Work and jobs"),
                                            ("drugs", "Drugs and recovery"),
                                            ("officer", "Trust in the officer")]):
        theme = Theme(run_id=run.id, number=number, position=number, label=label,
                      auto_label=label)
        db.session.add(theme)
        db.session.flush()
        themes[name] = theme.id
    for key, story_id in ids.items():
        for passage in db.session.scalars(select(Passage).where(Passage.story_id == story_id)):
            db.session.add(ThemePassage(run_id=run.id, passage_id=passage.id, story_id=story_id,
                                        theme_id=themes[key.split("-")[0]]))
    return themes


@pytest.fixture(scope="module")
def library_instance(corpus_instance, tmp_path_factory):
    folder = tmp_path_factory.mktemp("library")
    url = corpus_instance.copy_to(folder)
    ids: dict[str, int] = corpus_instance.data["ids"]
    with instance_app(url, folder) as app:
        curator_id = _facilitator(app)
        with app.app_context():
            curator = db.session.get(User, curator_id)
            stories = {key: db.session.get(Story, story_id) for key, story_id in ids.items()}
            housing = stories["housing-1"]
            housing.storyteller.identity = StorytellerIdentity(real_name=REAL_NAME)
            transcript = db.session.scalar(select(Transcript).where(
                Transcript.story_id == housing.id))
            transcript.speakers = {seg.speaker: SPEAKER_NAME for seg in transcript.segments}
            third = db.session.scalar(select(Transcript).where(
                Transcript.story_id == stories["housing-3"].id))
            words = [w for seg in third.segments for w in seg.words
                     if REDACTED_WORD in w.text.lower()]
            assert words, "the corpus should say the word to redact"
            for word in words:
                word.redaction = "[NAME]"
            stories[NO_LIBRARY_CONSENT].consent.staff_library = False
            stories[NOT_TO_BE_HEARD].consent.play_in_workshops = False
            db.session.flush()
            for key in [*APPROVED, DRAFT]:
                service.save_curation(stories[key], curator, f"A story about {key[:-2]}.")
            for key in APPROVED:
                service.approve(stories[key], curator)
            themes = _write_theme_run({k: v for k, v in ids.items() if k != NO_LIBRARY_CONSENT})
            first = service.passages_of(housing.id)[0]
            service.save_curation(housing, curator, "Leaving prison with nowhere to live.",
                                  [first.id])
            db.session.commit()
            codes = {key: service.entry_of(story_id).code for key, story_id in ids.items()
                     if service.entry_of(story_id) is not None}
            storyteller_codes = {key: s.storyteller.code for key, s in stories.items()}
    instance = PreparedInstance("library", url, folder, {
        "ids": ids, "codes": codes, "themes": themes, "curator": curator_id,
        "storyteller_codes": storyteller_codes})
    yield instance
    instance.remove()


@pytest.fixture
def prepared(library_instance):
    return library_instance


@pytest.fixture
def data(library_instance) -> dict:
    return library_instance.data


def _story(key: str, data: dict) -> Story:
    return db.session.get(Story, data["ids"][key])


def _user(user_id: int) -> User:
    return db.session.get(User, user_id)


def _codes_in(page: str, data: dict) -> set[str]:
    """The corpus keys of the library stories a page links to."""
    by_code = {code: key for key, code in data["codes"].items()}
    return {by_code[c] for c in re.findall(r"/library/(LS-[A-Z0-9]+)", page) if c in by_code}


def _json_keys(response, data: dict) -> list[str]:
    by_code = {code: key for key, code in data["codes"].items()}
    return [by_code[s["code"]] for s in response.get_json()["stories"]]


# --- curation ----------------------------------------------------------------------------------

def test_curation_moves_reviewed_to_approved_to_retired_and_back(app, data, make_user):
    reporter = make_user(Role.REPORTER, all_sites=True)
    admin, staff = make_user(Role.ADMIN), make_user(Role.STAFF)
    with app.app_context():
        curator, story = _user(data["curator"]), _story(DRAFT, data)
        assert service.stage(story) == "Draft, not in the library"
        for who in (reporter, admin, staff):  # only facilitators curate
            with pytest.raises(policy.AccessDenied):
                service.approve(story, _user(who))
        entry = service.approve(story, curator)
        assert entry.state is CurationState.APPROVED
        with pytest.raises(service.LibraryError, match="already in the staff library"):
            service.approve(story, curator)
        service.retire(story, curator)
        assert service.entry_of(story.id).state is CurationState.RETIRED
        with pytest.raises(service.LibraryError, match="nothing to retire"):
            service.retire(story, curator)
        service.approve(story, curator)  # a retired story can come back
        db.session.commit()
        actions = list(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_id == story.id,
            AuditEvent.action.in_(["library.approve", "library.retire"]))
            .order_by(AuditEvent.id)))
        assert actions == ["library.approve", "library.retire", "library.approve"]


def test_approval_needs_a_reviewed_transcript_a_summary_and_library_consent(app, data):
    with app.app_context():
        curator = _user(data["curator"])
        fresh = _story("officer-3", data)
        db.session.delete(service.entry_of(fresh.id))
        with pytest.raises(service.LibraryError, match="Write a short summary"):
            service.approve(fresh, curator)
        transcript = service.transcript_of(fresh.id)
        transcript.reviewed_at = None
        service.save_curation(fresh, curator, "Five officers in two years.")
        with pytest.raises(service.LibraryError, match="transcript has not been reviewed"):
            service.approve(fresh, curator)
        with pytest.raises(policy.AccessDenied, match="did not agree to their story being "
                                                      "shown in the staff library"):
            service.save_curation(_story(NO_LIBRARY_CONSENT, data), curator, "Summary.")


def test_approval_waits_until_suggested_redactions_are_decided(app, data):
    from storyhub.redaction import LABELS
    from storyhub.redaction import service as redaction

    with app.app_context():
        curator, story = _user(data["curator"]), _story(DRAFT, data)
        word = service.transcript_of(story.id).segments[0].words[2]
        word.text = " Sarah"  # a name the reporter has neither redacted nor dismissed
        db.session.flush()
        assert redaction.undecided(story) == ["Sarah"]
        with pytest.raises(service.LibraryError,
                           match="suggests redacting 1 more name or place") as refused:
            service.approve(story, curator)
        assert "Sarah" not in str(refused.value), "the facilitator reads it redacted too"
        assert service.entry_of(story.id).state is CurationState.DRAFT
        word.redaction = next(iter(LABELS))  # the reporter redacts it
        db.session.flush()
        assert redaction.undecided(story) == []
        assert service.approve(story, curator).state is CurationState.APPROVED
        db.session.rollback()  # the module's stories stay as they were


def test_facilitator_curates_from_the_story_page(app, client, auth, data):
    auth.login("curator", "curator pass phrase")
    story_id = data["ids"][DRAFT]
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert 'id="library-heading"' in page and "Save and approve for the library" in page
    response = client.post(f"/library/curate/{story_id}", data={
        "summary": "Changing officers, and trust.", "step": "approve"})
    assert response.status_code == 302
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "In the staff library" in page and "Retire from the library" in page
    client.post(f"/library/curate/{story_id}", data={"step": "retire"})
    assert "Retired from the library" in client.get(f"/stories/{story_id}").get_data(
        as_text=True)


# --- who sees what -----------------------------------------------------------------------------

@pytest.fixture
def staff_client(client, auth):
    auth.login_as(Role.STAFF)
    return client


def test_staff_see_only_approved_stories_their_storytellers_agreed_to(staff_client, data):
    page = staff_client.get("/library/").get_data(as_text=True)
    assert _codes_in(page, data) == set(APPROVED)
    assert f"{len(APPROVED)} stories" in page
    draft = data["codes"][DRAFT]
    assert staff_client.get(f"/library/{draft}").status_code == 403
    assert staff_client.get(f"/library/{draft}/audio").status_code == 403
    assert staff_client.get("/library/LS-NOSUCH").status_code == 404


def test_withdrawal_after_approval_removes_the_story_everywhere_at_once(app, staff_client,
                                                                        data, make_user):
    admin = make_user(Role.ADMIN)
    key = "housing-2"
    code = data["codes"][key]
    assert staff_client.get(f"/library/{code}").status_code == 200
    assert key in _codes_in(staff_client.get(
        f"/library/{data['codes']['housing-1']}").get_data(as_text=True), data)  # related
    with app.app_context():
        from storyhub.stories import service as stories

        stories.withdraw_consent(_story(key, data), _user(admin))
        db.session.commit()  # the erasure job has not run yet
    assert staff_client.get(f"/library/{code}").status_code == 403
    assert staff_client.get(f"/library/{code}/audio").status_code == 403
    for url in ("/library/", "/library/?q=hostel&how=words", "/library/?q=homeless+hostel",
                f"/library/{data['codes']['housing-1']}", "/library/stories.json?q=hostel"):
        assert key not in _codes_in(staff_client.get(url).get_data(as_text=True), data), url


def test_overdue_and_narrowed_consent_leave_the_library(app, staff_client, data, make_user):
    admin = make_user(Role.ADMIN)
    with app.app_context():
        overdue = _story("work-1", data)
        overdue.consent.review_on = date.today() - timedelta(days=1)
        from storyhub.stories import service as stories
        from storyhub.stories.consent import Scope
        from storyhub.stories.erasure import run_erasure_job

        narrowed = _story("work-2", data)
        keep = {s for s in Scope if s is not Scope.STAFF_LIBRARY}
        stories.change_consent(narrowed, stories.ConsentChange(keep, date.today()),
                               _user(admin))
        narrowed_id = narrowed.id
        db.session.commit()
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "erase"))
        run_erasure_job(job_id)
        assert service.entry_of(narrowed_id) is None  # its curation went with the scope
    page = staff_client.get("/library/?q=job").get_data(as_text=True)
    assert not {"work-1", "work-2"} & _codes_in(page, data)
    assert not {"work-1", "work-2"} & _codes_in(
        staff_client.get("/library/?q=employer&how=words").get_data(as_text=True), data)


def test_a_story_not_agreed_to_be_heard_is_read_without_a_player(staff_client, data):
    code = data["codes"][NOT_TO_BE_HEARD]
    page = staff_client.get(f"/library/{code}").get_data(as_text=True)
    assert "<audio" not in page and "not to it being heard" in page
    assert staff_client.get(f"/library/{code}/audio").status_code == 403
    heard = staff_client.get(f"/library/{data['codes']['housing-1']}")
    assert b'<audio id="library-player"' in heard.data
    audio = staff_client.get(f"/library/{data['codes']['housing-1']}/audio",
                             headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.data) == 100


def test_reporters_cannot_reach_the_library(client, auth, data):
    auth.login_as(Role.REPORTER, all_sites=True)
    assert client.get("/library/").status_code == 403
    assert client.get(f"/library/{data['codes']['housing-1']}").status_code == 403


# --- search ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("methadone", {"drugs-1"}),
    ("hostel", {"housing-2", "housing-3"}),  # housing-1's transcript heard "hospital"
    ("landlord deposit", {"housing-3"}),
    ("landlords", {"housing-2", "housing-3"}),  # stemmed: landlord, landlords
])
def test_word_search_finds_the_stories_that_say_it(staff_client, data, query, expected):
    page = staff_client.get("/library/", query_string={"q": query, "how": "words"})
    text = page.get_data(as_text=True)
    assert _codes_in(text, data) == expected
    assert "<mark>" in text


def test_word_search_cannot_find_a_redacted_word_and_respects_filters(staff_client, data):
    page = staff_client.get("/library/", query_string={"q": REDACTED_WORD, "how": "words"})
    assert _codes_in(page.get_data(as_text=True), data) == set()
    filtered = staff_client.get("/library/stories.json", query_string={
        "q": "hostel", "how": "words", "role": "staff"})
    assert _json_keys(filtered, data) == ["housing-2"]


def test_a_snippet_is_cut_around_the_most_matched_words_and_marks_them():
    from storyhub.library.search import START, STOP, snippet

    text = ("We talked about the weather for a long time. " * 8
            + "Then the hostel said the landlord wanted a deposit. " + "More weather. " * 8)
    words = re.compile(r"\b(?:landlord|deposit|hostels?)\b", re.IGNORECASE)
    cut = snippet(text, words, words=12)
    assert cut.startswith("…") and cut.endswith("…")
    assert f"{START}landlord{STOP}" in cut and f"{START}deposit{STOP}" in cut
    assert f"{START}hostel{STOP}" in cut
    assert len(cut.split()) < 25
    assert snippet("Short and sweet.", None) == "Short and sweet."  # no match: the start


def test_meaning_search_finds_stories_about_nowhere_to_live(staff_client, data):
    response = staff_client.get("/library/stories.json",
                                query_string={"q": "not having anywhere to live"})
    found = _json_keys(response, data)
    assert set(found[:3]) == HOUSING, found
    first = response.get_json()["stories"][0]
    assert first["snippet"] and first["start"] is not None and "Housing and hostels" in first[
        "themes"]


def test_filters_narrow_the_list(staff_client, data):
    theme = data["themes"]["drugs"]
    assert set(_json_keys(staff_client.get(f"/library/stories.json?theme={theme}"),
                          data)) == {"drugs-1", "drugs-2"}
    assert set(_json_keys(staff_client.get("/library/stories.json?role=staff"), data)) == {
        "housing-2", "work-2", "officer-2"}
    assert _json_keys(staff_client.get("/library/stories.json?type=dialogue"), data) == []
    today = date.today().isoformat()
    assert len(_json_keys(staff_client.get(
        f"/library/stories.json?recorded_from={today}&recorded_to={today}"), data)) == len(
        APPROVED)


def test_related_stories_are_close_in_meaning(staff_client, data):
    page = staff_client.get(f"/library/{data['codes']['housing-1']}").get_data(as_text=True)
    related = page[page.index("Related stories"):]
    assert len(_codes_in(related, data) & HOUSING) == 2


def test_rebuild_search_command(app, runner, staff_client, data):
    with app.app_context():
        from storyhub.library import search

        search.clear_index()
        db.session.commit()
    assert _codes_in(staff_client.get("/library/?q=methadone&how=words").get_data(
        as_text=True), data) == set()
    result = runner.invoke(args=["rebuild-search"])
    assert result.exit_code == 0, result.output
    assert f"{len(APPROVED)} stories" in result.output
    assert _codes_in(staff_client.get("/library/?q=methadone&how=words").get_data(
        as_text=True), data) == {"drugs-1"}


def test_erasure_leaves_nothing_in_the_library(app, data):
    with app.app_context():
        from storyhub.stories.erasure import erase_now

        story = _story("drugs-1", data)
        erase_now(story, None, None, "test")
        db.session.commit()
        assert db.session.get(LibraryEntry, data["ids"]["drugs-1"]) is None
        from storyhub.library import search

        allowed = select(Story.id)
        assert search.full_text("methadone", allowed) == []


# --- never who told it -------------------------------------------------------------------------

def test_no_staff_response_names_or_codes_a_storyteller(app, staff_client, data):
    with app.app_context():
        reporter_names = set(db.session.scalars(select(User.display_name).where(
            User.role == Role.REPORTER)))
    secrets = {REAL_NAME, *REAL_NAME.split(), SPEAKER_NAME, *data["storyteller_codes"].values(),
               "Cora Curator", *reporter_names}
    urls = ["/", "/library/", "/library/?q=hostel&how=words", "/library/?q=nowhere+to+live",
            "/library/stories.json", "/library/stories.json?q=hostel&how=words",
            "/library/stories.json?q=somewhere+to+live",
            *(f"/library/{data['codes'][key]}" for key in APPROVED)]
    for url in urls:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        text = response.get_data(as_text=True)
        for secret in secrets:
            assert secret not in text, (url, secret)
        assert REDACTED_WORD not in text.lower(), url
        assert not re.search(r"\bST-[A-Z0-9]{6}\b", text), url
    page = staff_client.get(f"/library/{data['codes']['housing-3']}").get_data(as_text=True)
    assert "[NAME]" in page and "Speaker 1" in page


def test_staff_home_leads_to_the_library(staff_client):
    page = staff_client.get("/").get_data(as_text=True)
    assert 'href="/library/"' in page
    assert 'action="/library/"' in page  # search straight from home
    assert "nothing for your role" not in page


# --- a phone, a browser ------------------------------------------------------------------------

@pytest.mark.browser
def test_staff_member_searches_filters_reads_and_listens_on_a_phone(library_instance, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from .browser import LiveServer, launch_chromium, require_chromium

    require_chromium()
    instance = tmp_path / "instance"
    database = library_instance.copy_to(instance)
    live = LiveServer(instance, env={"STORYHUB_DATABASE_URL": database,
                                     "STORYHUB_SESSION_COOKIE_SECURE": "false"})
    live.cli("create-user", "sam", "--role", "staff", "--name", "Sam Staff",
             "--password-stdin", input=PASSWORD + "\n")
    live.start()
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, ["--autoplay-policy=no-user-gesture-required"])
            phone = browser.new_context(viewport={"width": 375, "height": 740},
                                        device_scale_factor=2, is_mobile=True, has_touch=True)
            page = phone.new_page()
            page.goto(live.url + "/login")
            page.get_by_label("Username").fill("sam")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # From the home page, as a staff member arrives.
            page.get_by_label("Find stories").fill("leaving prison with nowhere to live")
            page.get_by_role("button", name="Search the library").click()
            cards = page.locator(".library-card")
            expect(cards.first).to_be_visible()
            titles = cards.locator(".card-title").all_inner_texts()
            housing = {f"Story {k}" for k in HOUSING}
            assert titles[0].strip() in housing, titles
            assert len({t.strip() for t in titles[:3]} & housing) >= 2, titles
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.get_by_text("Filters", exact=True).click()
            page.get_by_label("Told by").select_option("staff")
            page.get_by_role("button", name="Apply filters").click()
            expect(page.locator(".library-card .card-title").first).to_have_text(
                "Story housing-2")
            page.get_by_role("link", name="Story housing-2").click()
            expect(page.get_by_role("heading", name="Story housing-2")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.locator(".timestamp.seek").first.click()
            page.wait_for_function(
                "() => document.getElementById('library-player').currentTime > 0 && "
                "document.querySelector('.word.current') !== null", timeout=15000)
            playing = page.locator(".word.current")
            expect(playing).to_have_count(1)
            browser.close()
    finally:
        live.stop()
        library_instance.discard_copy(database)
