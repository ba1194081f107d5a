"""The staff library: curation, who sees what, search by words and by meaning, no identity.

One prepared instance for the module: the twelve corpus stories (real intake, reviewed
transcripts), most approved by a facilitator (which embeds their passages with the real
all-MiniLM-L6-v2, once), a finished theme run written in directly, and a few stories whose
consent or curation keeps them out. Each test starts from a copy of it.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select
from sqlalchemy import update as sa_update

from storyhub import dates, policy
from storyhub.accounts.models import Role, User
from storyhub.audit import AuditEvent
from storyhub.database import utcnow
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.library import publishing, service
from storyhub.library.models import (
    CurationState,
    LibraryEntry,
    PublishedTheme,
    PublishedThemeStory,
)
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story, StorytellerIdentity
from storyhub.themes.models import Passage, Theme, ThemePassage, ThemeRun
from storyhub.transcripts.models import Transcript
from tests.support.factories import PASSWORD
from tests.support.instances import PreparedInstance, instance_app
from tests.support.pages import LibraryPage, SignInPage

APPROVED = ["housing-1", "housing-2", "housing-3", "work-1", "work-2", "work-3", "drugs-1",
            "drugs-2", "officer-1", "officer-2"]
DRAFT = "officer-3"  # summary written, never approved
NO_LIBRARY_CONSENT = "drugs-3"  # the storyteller did not agree to the library
NOT_TO_BE_HEARD = "work-3"  # in the library, but not agreed to being played
REAL_NAME = "Bartholomew Quince"  # housing-1's storyteller, stored with their agreement
SPEAKER_NAME = "Barty"  # what the reporter named housing-1's speaker
REDACTED_WORD = "guarantor"  # said only in housing-3, redacted there as a name
HOUSING = {"housing-1", "housing-2", "housing-3"}
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RELEVANCE = BENCHMARKS / "library_relevance.py"
RANKING = BENCHMARKS / "library_search.py"


def _facilitator(app) -> int:
    from storyhub.accounts import service as accounts

    with app.app_context():
        user = accounts.create_user("curator", "Cora Curator", Role.FACILITATOR,
                                    "curator pass phrase")
        db.session.commit()
        return user.id


# corpus theme: (the keyword name a run gives it, the name the facilitator gave it)
THEME_NAMES = {"housing": ("Hostel, council and flat", "Housing and hostels"),
               "work": ("Job, employer and warehouse", "Work and jobs"),
               "drugs": ("Heroin, methadone and alcohol", "Drugs and recovery"),
               "officer": ("Officer, trust and licence", "Trust in the officer")}


def _write_theme_run(ids: dict[str, int], number: int = 1,
                     named: bool = True) -> tuple[int, dict[str, int]]:
    """A finished theme run, one theme per corpus theme (as a run would find them), with the
    facilitator's names (`named`) or the keyword names a run gives; return its id and themes."""
    job = Job(kind="themes", status=JobStatus.DONE, progress=100.0)
    db.session.add(job)
    db.session.flush()
    run = ThemeRun(number=number, job_id=job.id, finished_at=utcnow())
    db.session.add(run)
    db.session.flush()
    themes = {}
    for position, (name, (keywords, label)) in enumerate(THEME_NAMES.items()):
        theme = Theme(run_id=run.id, number=position, position=position,
                      label=label if named else keywords, auto_label=keywords,
                      keywords=keywords.replace(" and", ",").split(", "), edited=named)
        db.session.add(theme)
        db.session.flush()
        themes[name] = theme.id
    for key, story_id in ids.items():
        for passage in db.session.scalars(select(Passage).where(Passage.story_id == story_id)):
            db.session.add(ThemePassage(run_id=run.id, passage_id=passage.id, story_id=story_id,
                                        theme_id=themes[key.split("-")[0]]))
    db.session.flush()
    return run.id, themes


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
            run_id, themes = _write_theme_run({k: v for k, v in ids.items()
                                               if k != NO_LIBRARY_CONSENT})
            publishing.publish(run_id, curator)
            first = service.passages_of(housing.id)[0]
            service.save_curation(housing, curator, "Leaving prison with nowhere to live.",
                                  [first.id])
            db.session.commit()
            codes = {key: service.entry_of(story_id).code for key, story_id in ids.items()
                     if service.entry_of(story_id) is not None}
            storyteller_codes = {key: s.storyteller.code for key, s in stories.items()}
    instance = PreparedInstance("library", url, folder, {
        "ids": ids, "codes": codes, "themes": themes, "run": run_id, "curator": curator_id,
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


def test_a_title_or_summary_naming_the_storyteller_stops_approval(app, data):
    with app.app_context():
        curator, story = _user(data["curator"]), _story(DRAFT, data)
        story.storyteller.identity = StorytellerIdentity(real_name="Zebedee Marchbanks")
        title = story.title
        db.session.flush()
        with pytest.raises(service.LibraryError, match="summary holds the storyteller's name"):
            service.save_curation(story, curator, "Zebedee talks about his officers.")
        story.title = "Marchbanks and the five officers"
        with pytest.raises(service.LibraryError, match="title holds the storyteller's name"):
            service.approve(story, curator)
        entry = service.entry_of(story.id)
        entry.summary = "Told to ZEBEDEE's officer."  # any case, any punctuation
        story.title = title
        with pytest.raises(service.LibraryError, match="summary holds the storyteller's name"):
            service.approve(story, curator)
        assert service.entry_of(story.id).state is CurationState.DRAFT
        service.save_curation(story, curator, "Five officers in two years.")
        assert service.approve(story, curator).state is CurationState.APPROVED
        db.session.rollback()  # the module's stories stay as they were


def test_a_story_renamed_after_approval_is_found_by_its_new_title(app, client, auth, data):
    auth.login("curator", "curator pass phrase")
    story_id = data["ids"]["housing-2"]
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Change the title" in page
    done = client.post(f"/stories/{story_id}/title", data={"title": "  Kettle   zeppelin  "},
                       follow_redirects=True)
    assert "Title changed." in done.get_data(as_text=True)
    found = client.get("/library/stories.json", query_string={
        "q": "zeppelin", "how": "words"}).get_json()
    assert [s["title"] for s in found["stories"]] == ["Kettle zeppelin"]
    empty = client.post(f"/stories/{story_id}/title", data={"title": " "},
                        follow_redirects=True)
    assert "Give the story a title." in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Story, story_id).title == "Kettle zeppelin"
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "story.rename", AuditEvent.target_id == story_id))


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
        overdue.consent.review_on = dates.today() - timedelta(days=1)
        from storyhub.jobs.runner import run_job
        from storyhub.stories import service as stories
        from storyhub.stories.consent import Scope

        narrowed = _story("work-2", data)
        keep = {s for s in Scope if s is not Scope.STAFF_LIBRARY}
        stories.change_consent(narrowed, stories.ConsentChange(keep, dates.today()),
                               _user(admin))
        narrowed_id = narrowed.id
        db.session.commit()
        job_id = db.session.scalar(select(Job.id).where(Job.kind == "erase"))
        run_job(job_id)
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


def _heading(page: str) -> str:
    """The results heading, as a reader reads it."""
    found = re.search(r'<div id="results"[^>]*>\s*<h2[^>]*>(.*?)</h2>', page, re.DOTALL)
    assert found, "the results have a heading"
    return html.unescape(re.sub(r"\s+", " ", found.group(1))).strip()


def _link(page: str, text: str) -> str:
    found = re.search(r'<a href="([^"]+)">' + re.escape(text) + "</a>", html.unescape(page))
    assert found, f"a link “{text}”"
    return found.group(1)


def test_word_search_needs_every_word_says_how_many_and_offers_any(staff_client, data):
    """Every word by default (a story saying one of them is not listed), with a count; any of
    the words only when asked for, from the results."""
    page = staff_client.get("/library/", query_string={"q": "homeless deposit", "how": "words"}
                            ).get_data(as_text=True)
    assert _codes_in(page, data) == {"housing-3"}  # housing-2 says "homeless", not "deposit"
    assert _heading(page) == "1 story with all the words “homeless deposit”"
    wider = staff_client.get(_link(page, "Show the 2 stories with any of the words")
                             ).get_data(as_text=True)
    assert _codes_in(wider, data) == {"housing-2", "housing-3"}
    assert _heading(wider) == "2 stories with any of the words “homeless deposit”"
    assert _codes_in(staff_client.get(_link(wider, "Show only the 1 story with all of them")
                                      ).get_data(as_text=True), data) == {"housing-3"}

    # Nothing has them all: the page says so, and offers any of them rather than listing them.
    none = staff_client.get("/library/", query_string={"q": "methadone deposit", "how": "words"}
                            ).get_data(as_text=True)
    assert _codes_in(none, data) == set()
    assert _heading(none) == "No stories with all the words “methadone deposit”"
    assert "Show the 2 stories with any of the words" in html.unescape(none)


@pytest.mark.parametrize("query", ['"council housing"', "“council housing”", '"council housing'])
def test_word_search_finds_a_quoted_phrase_as_said(staff_client, data, query):
    words = staff_client.get("/library/", query_string={"q": "council housing", "how": "words"})
    assert _codes_in(words.get_data(as_text=True), data) == {"housing-1", "housing-2"}
    # housing-1 says "the council said the housing list…": both words, not the phrase.
    page = staff_client.get("/library/", query_string={"q": query, "how": "words"}
                            ).get_data(as_text=True)
    assert _codes_in(page, data) == {"housing-2"}
    assert _heading(page).startswith("1 story with the phrase “")


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
                                query_string={"q": "leaving prison with nowhere to live"})
    found = _json_keys(response, data)
    assert found[0] in HOUSING and len(set(found) & HOUSING) >= 2, found
    first = response.get_json()["stories"][0]
    assert first["snippet"] and first["start"] is not None and "Housing and hostels" in first[
        "themes"]


def test_stories_near_a_search_but_under_the_cut_off_are_offered_apart(staff_client, data):
    """The cut-off keeps some relevant stories out of the list; staff can still open them."""
    query = "not having anywhere to live"
    page = staff_client.get("/library/", query_string={"q": query}).get_data(as_text=True)
    if "No stories match" in html.unescape(page):  # nothing listed: the nearest, when asked
        assert "see the nearest stories anyway" in page
        page = staff_client.get("/library/", query_string={"q": query, "nearest": "1"}
                                ).get_data(as_text=True)
    listed, nearby = page.split('id="nearby"') if 'id="nearby"' in page else (page, "")
    nearby = nearby.split("</details>")[0]
    assert _codes_in(listed, data) | _codes_in(nearby, data) >= HOUSING, "every housing story"
    assert not _codes_in(listed, data) & _codes_in(nearby, data)
    if nearby:
        assert "that may be related, less close to" in nearby


# Searches about nothing any library story speaks of (benchmarks/library_relevance.py has more).
NOTHING_MATCHES = ["staff car parking", "canteen menu", "IT password reset"]


@pytest.mark.parametrize("query", NOTHING_MATCHES)
def test_meaning_search_says_when_no_story_matches(staff_client, data, query):
    assert staff_client.get("/library/stories.json", query_string={"q": query}).get_json()[
        "stories"] == []
    page = staff_client.get("/library/", query_string={"q": query}).get_data(as_text=True)
    assert _codes_in(page, data) == set()
    text = html.unescape(page)
    assert f"No stories match “{query}”" in text and "Stories about" not in text
    words = re.search(r'<a href="([^"]+)">search by exact words</a>', page)
    assert words and "how=words" in html.unescape(words.group(1)), "offers the other search"


@pytest.mark.slow
def test_the_relevance_benchmark_runs_quick_and_meets_its_targets() -> None:
    done = subprocess.run([sys.executable, str(RELEVANCE), "--quick"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    keys = ["queries", "libraries", "stories", "precision", "recall", "nothing_found_right",
            "something_found_right", "cutoff", "best_cutoff", "peer_precision", "peer_recall",
            "peer_nothing_found_right"]
    assert re.fullmatch("RESULT " + " ".join(f"{k}=[0-9.]+" for k in keys), last), last
    figures = {k: float(v) for k, v in (pair.split("=") for pair in last.split()[1:])}
    assert figures["queries"] >= 50 and figures["stories"] >= 30
    # Most searches about nothing in the library are answered "No stories match" (never, with
    # no cut-off), most of the others with stories; the stories listed are relevant far more
    # often than in a page of the closest ones, and most relevant stories are among them.
    # The cut-off is calibrated for F1 on three libraries; in this one, the demo's size, it
    # answers 96% of the searches about nothing rightly and lists stories for 70% of the rest
    # (the others offer the nearest stories, folded).
    assert figures["nothing_found_right"] >= 0.85 and figures["peer_nothing_found_right"] == 0
    assert figures["something_found_right"] >= 0.6
    assert figures["precision"] >= 2 * figures["peer_precision"]
    assert figures["recall"] >= 0.45


@pytest.mark.slow
@pytest.mark.one_database  # its own SQLite library, whatever the suite's database
def test_the_search_benchmark_runs_quick_to_its_result_line() -> None:
    done = subprocess.run([sys.executable, str(RANKING), "--quick"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    keys = ["queries", "p_at_5", "mrr", "ndcg_at_10", "words_p_at_5", "seconds"]
    assert re.fullmatch("RESULT " + " ".join(f"{k}=[0-9.]+" for k in keys), last), last
    figures = {k: float(v) for k, v in (pair.split("=") for pair in last.split()[1:])}
    assert figures["queries"] >= 30
    assert all(0 <= figures[k] <= 1 for k in keys[1:5]), last
    # Searches written as staff write them: meaning finds what they are about far better
    # than requiring every word, and the first story listed is mostly a relevant one.
    assert figures["p_at_5"] > figures["words_p_at_5"], done.stdout[-2000:]
    assert figures["mrr"] >= 0.5, done.stdout[-2000:]
    # Listing the stories beside a close one puts more relevant ones in the first five than a
    # cut-off for every story did, and says "No stories match" as often.
    rows = {label.strip(): [float(v) for v in values.split()] for label, values in re.findall(
        r"^(.{40})  ([0-9. ]+)$", done.stdout, re.MULTILINE)}
    before = rows["cut-off for every story (before)"]
    assert figures["p_at_5"] > before[0], done.stdout[-2000:]
    now = next(v for label, v in rows.items() if label.startswith("StoryHub"))
    assert now[4] == before[4] >= 0.5, done.stdout[-2000:]


def test_a_meaning_search_lists_stories_beside_a_close_one_and_none_without_one():
    """Once one story is close enough to a search, the less close ones beside it are listed
    too; when none is, none is listed, however many are nearly close enough."""
    from storyhub.library.search import Scored, passing

    cutoff, share = 0.3, 0.7  # stories within 0.7 of the cut-off: from 0.21
    cases = [((0.45, 0.25, 0.22, 0.1), [1, 2, 3]),
             ((0.31,), [1]),
             ((0.29, 0.28, 0.25), []),
             ((), [])]
    for scores, listed in cases:
        found = [Scored(n, score, 0.0, "") for n, score in enumerate(scores, 1)]
        assert [s.story_id for s in passing(found, cutoff, share)] == listed, scores
    # A share of 1: every story must reach the cut-off itself, as before.
    found = [Scored(1, 0.45, 0.0, ""), Scored(2, 0.25, 0.0, "")]
    assert [s.story_id for s in passing(found, cutoff, 1.0)] == [1]


def _theme_options(client) -> dict[str, str]:
    """The library's theme filter as a reader sees it: name -> value."""
    page = client.get("/library/").get_data(as_text=True)
    found = re.search(r'<select id="theme" name="theme">(.*?)</select>', page, re.DOTALL)
    if found is None:
        return {}
    return {html.unescape(name): value for value, name in re.findall(
        r'<option value="(\d+)">([^<]*)</option>', found.group(1))}


def test_filters_narrow_the_list(staff_client, data):
    theme = _theme_options(staff_client)["Drugs and recovery"]
    assert set(_json_keys(staff_client.get(f"/library/stories.json?theme={theme}"),
                          data)) == {"drugs-1", "drugs-2"}
    assert set(_json_keys(staff_client.get("/library/stories.json?role=staff"), data)) == {
        "housing-2", "work-2", "officer-2"}
    assert _json_keys(staff_client.get("/library/stories.json?type=dialogue"), data) == []
    today = dates.today().isoformat()
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
        # Nor in a published theme, when only the story's analysis is erased.
        work = _story("work-1", data)
        erase_now(work, [Scope.TRANSCRIBE_ANALYSE.value], None, "test")
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(PublishedThemeStory).where(
            PublishedThemeStory.story_id.in_([story_id for key, story_id in data["ids"].items()
                                              if key in ("drugs-1", "work-1")]))) == 0
        from storyhub.library import search

        allowed = select(Story.id)
        assert search.full_text("methadone", allowed) == []


# --- themes staff see: a published run's, by the facilitator's names --------------------------

def _publish(client, run_id: int):
    return client.post(f"/library/themes/{run_id}/publish", follow_redirects=True)


def _card_themes(client) -> set[str]:
    stories = client.get("/library/stories.json").get_json()["stories"]
    return {name for story in stories for name in story["themes"]}


def _keyword_names() -> set[str]:
    return {keywords for keywords, _name in THEME_NAMES.values()}


def test_staff_see_the_names_of_the_published_run_until_another_is_published(
        app, client, auth, data, make_user):
    make_user(Role.STAFF, username="sam")
    names = {name for _keywords, name in THEME_NAMES.values()}
    with app.app_context():  # a newer run, finished, its themes still named by keywords
        later, themes = _write_theme_run({k: v for k, v in data["ids"].items()
                                          if k != NO_LIBRARY_CONSENT}, number=2, named=False)
        db.session.commit()

    def staff_see() -> tuple[set[str], set[str], str]:
        auth.logout()
        auth.login("sam")
        seen = set(_theme_options(client)), _card_themes(client), html.unescape(
            client.get("/library/").get_data(as_text=True))
        auth.logout()
        return seen

    filter_names, card_names, page = staff_see()
    assert filter_names == card_names == names  # run 1's, published in the fixture
    assert not any(keywords in page for keywords in _keyword_names())

    auth.login("curator", "curator pass phrase")
    refused = html.unescape(_publish(client, later).get_data(as_text=True))
    assert "before publishing" in refused
    for keywords in _keyword_names():  # the facilitator is told which themes to name
        assert f"“{keywords}”" in refused
    assert staff_see()[0] == names  # nothing changed for staff
    auth.login("curator", "curator pass phrase")
    renamed = {"housing": "Somewhere to live", "work": "Getting work", "drugs": "Recovery"}
    for key, name in renamed.items():
        client.post(f"/themes/runs/{later}/themes/{themes[key]}/rename",
                    data={"label": name, "description": ""})
    client.post(f"/themes/runs/{later}/themes/{themes['officer']}/hide", data={"hidden": "1"})
    done = html.unescape(_publish(client, later).get_data(as_text=True))
    assert "Staff now see the 3 themes of run 2" in done and "Publish again" in done
    filter_names, card_names, page = staff_see()
    assert filter_names == card_names == set(renamed.values())
    assert not any(name in page for name in names | _keyword_names())  # nor the hidden one

    # A later edit stays with the facilitator until they publish again.
    auth.login("curator", "curator pass phrase")
    client.post(f"/themes/runs/{later}/themes/{themes['drugs']}/rename",
                data={"label": "Drugs, drink and recovery", "description": ""})
    assert staff_see()[0] == set(renamed.values())
    auth.login("curator", "curator pass phrase")
    _publish(client, later)
    assert "Drugs, drink and recovery" in staff_see()[0]
    auth.login("curator", "curator pass phrase")
    first = client.get(f"/themes/runs/{data['run']}").get_data(as_text=True)
    assert "Staff do not see this run's themes" in first  # run 2's replaced them
    with app.app_context():
        published = list(db.session.scalars(select(AuditEvent.target_id).where(
            AuditEvent.action == "library.publish_themes", AuditEvent.actor_id == data[
                "curator"]).order_by(AuditEvent.id)))
        assert published == [data["run"], later, later]  # the fixture's, then twice run 2


def test_staff_filter_by_a_published_theme_and_keep_its_stories_as_published(
        app, staff_client, data):
    housing = _theme_options(staff_client)["Housing and hostels"]
    before = set(_json_keys(staff_client.get(f"/library/stories.json?theme={housing}"), data))
    assert before == HOUSING
    with app.app_context():  # the facilitator moves a passage out of the theme, unpublished
        curator = _user(data["curator"])
        from storyhub.themes import facilitator_edits as editing

        run = db.session.get(ThemeRun, data["run"])
        for row in editing.passages_of(run, data["themes"]["housing"]):
            if row.story_id == data["ids"]["housing-1"]:
                editing.move(run, row.passage_id, data["themes"]["work"], curator.id)
        db.session.commit()
    assert set(_json_keys(staff_client.get(f"/library/stories.json?theme={housing}"),
                          data)) == before


def test_before_any_run_is_published_staff_see_no_themes(app, client, auth, data):
    with app.app_context():  # as in an instance where nobody has published a run yet
        db.session.execute(sa_delete(PublishedTheme))
        db.session.execute(sa_update(ThemeRun).values(published_at=None, published_by_id=None))
        db.session.commit()
    auth.login_as(Role.STAFF)
    page = client.get("/library/").get_data(as_text=True)
    assert 'name="theme"' not in page and "publish a finished theme run" not in page
    assert _card_themes(client) == set()
    auth.logout()
    auth.login("curator", "curator pass phrase")  # facilitators are told how staff get themes
    assert "publish a finished theme run" in client.get("/library/").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.STAFF, Role.REPORTER])
def test_only_facilitators_and_admins_publish_themes(app, client, auth, data, role):
    user_id = auth.login_as(role)
    assert client.post(f"/library/themes/{data['run']}/publish").status_code == 403
    with app.app_context():
        with pytest.raises(policy.AccessDenied):
            publishing.publish(data["run"], _user(user_id))
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "library.publish_themes")) == 1  # the fixture's


# Whether a person named a theme, as publishing asks (the theme's fields -> named?).
NAMED = [
    ({"label": "Hostel, council and flat", "auto_label": "Hostel, council and flat"}, False),
    ({"label": "hostel,  council and FLAT", "auto_label": "Hostel, council and flat",
      "edited": True}, False),  # only the description changed, say
    ({"label": "Housing after prison", "auto_label": "Hostel, council and flat",
      "edited": True}, True),  # renamed
    ({"label": "Accommodation", "auto_label": "Accommodation", "seed": "Accommodation"},
     True),  # an expected theme the facilitator listed
    ({"label": "Hostel, council and flat", "auto_label": "Hostel and council",
      "keywords": ["hostel", "council", "flat"], "edited": True}, False),  # split: new keywords
]


@pytest.mark.parametrize(("fields", "named"), NAMED)
def test_a_theme_counts_as_named_only_when_a_person_named_it(fields, named) -> None:
    theme = Theme(**({"keywords": [], "seed": None, "edited": False} | fields))
    assert publishing.named(theme) is named


# --- "You said, we did" ------------------------------------------------------------------------

def test_staff_find_you_said_we_did_from_their_home_page(app, staff_client, data):
    from storyhub.packs import outcomes
    from storyhub.packs import service as packs

    with app.app_context():
        held = packs.create_workshop(data["run"], data["curator"], "Housing after release",
                                     held_on=date(2026, 3, 12))
        outcomes.add_action(held, data["curator"], "A housing worker at every release day",
                            who="Senior probation officer", status="done",
                            outcome="A housing worker now comes every Tuesday.")
        packs.create_workshop(data["run"], data["curator"], "Planning, nothing agreed yet")
        db.session.commit()
        sheet = f"/packs/{held.id}/you-said-we-did"
    home = staff_client.get("/").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)">Housing after release</a>, <time[^>]*>12 March 2026',
                     home)
    assert link and link.group(1) == sheet, "the sheet is linked, with its date"
    assert "Planning, nothing agreed yet" not in home  # nothing to feed back yet
    page = staff_client.get(link.group(1))
    assert page.status_code == 200
    assert "A housing worker now comes every Tuesday." in page.get_data(as_text=True)
    assert f'href="{sheet}"' in staff_client.get("/library/").get_data(as_text=True)



def test_staff_home_says_when_no_workshop_has_recorded_its_changes(staff_client):
    """Before any workshop records what changed, staff still find the section, and why it is
    empty, on their home page and in the library."""
    for url in ("/", "/library/"):
        page = staff_client.get(url).get_data(as_text=True)
        assert 'id="you-said-we-did"' in page, url
        assert "No workshop has recorded its changes yet" in page, url

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


def test_the_audit_log_names_a_story_by_its_number_and_its_library_code(client, auth, data):
    """Staff speak of a story by its library code; the audit log shows both, and finds it by
    either."""
    auth.login_as(Role.ADMIN)
    code, story_id = data["codes"]["housing-2"], data["ids"]["housing-2"]
    assert client.get(f"/library/{code}").status_code == 200  # an admin reads it as staff do
    for story in (code, code.lower(), str(story_id)):
        page = html.unescape(client.get("/admin/audit", query_string={
            "story": story, "action": "library.read"}).get_data(as_text=True))
        assert f"story {story_id}</a> <span class=\"hint\">(library <code>{code}</code>)" in page
        assert "Read a story in the staff library <code>library.read</code>" in page
    missing = client.get("/admin/audit", query_string={"story": "LS-NOSUCH"})
    assert "Nothing recorded that matches" in missing.get_data(as_text=True)


def test_staff_home_leads_to_the_library(staff_client):
    page = staff_client.get("/").get_data(as_text=True)
    assert 'href="/library/"' in page
    assert 'action="/library/"' in page  # search straight from home
    assert "nothing for your role" not in page
    assert "signed in with the role of probation staff (reader)." in page  # not "as a …"


# --- a phone, a browser ------------------------------------------------------------------------

@pytest.mark.browser
def test_staff_member_searches_filters_reads_and_listens_on_a_phone(library_instance, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.support.browser import LiveServer, launch_chromium, require_chromium

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
            SignInPage(page).open(live.url).sign_in("sam", PASSWORD)
            # From the home page, as a staff member arrives.
            library = LibraryPage(page)
            library.search("leaving prison with nowhere to live")
            cards = page.locator(".library-card")
            expect(cards.first).to_be_visible()
            titles = cards.locator(".card-title").all_inner_texts()
            housing = {f"Story {k}" for k in HOUSING}
            assert titles[0].strip() in housing, titles
            assert len({t.strip() for t in titles[:3]} & housing) >= 2, titles
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            # "Filters" shows it opens: a marker beside it, pointing down once open.
            # (Its stylesheet may still be loading while the cards are already visible.)
            page.wait_for_load_state("load")
            marker = """() => { const s = getComputedStyle(
                document.querySelector('details.filters > summary'), '::before');
                return [parseFloat(s.borderLeftWidth), s.transform]; }"""
            width, turned = page.evaluate(marker)
            assert width > 0 and turned == "none"
            library.open_filters()
            page.wait_for_function(  # turned (a transition), once the filters open
                "() => getComputedStyle(document.querySelector('details.filters[open] > "
                "summary'), '::before').transform.startsWith('matrix(0')", timeout=5000)
            library.filter_by_teller("person_on_probation")
            expect(page.locator(".library-card .card-title").first).to_have_text(
                "Story housing-1")
            page.get_by_role("link", name="Story housing-1").click()
            expect(page.get_by_role("heading", name="Story housing-1")).to_be_visible()
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
