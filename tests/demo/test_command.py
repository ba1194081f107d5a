"""`storyhub demo`: the demo project loads end to end on a fresh instance, and only there.

The load runs the real pipeline (intake, Whisper, a reporter's review, BERTopic, a pack) over
the first four demo stories (each role, and one without consent to quotes), to stay cheap; the
full twenty take the same path.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sqlalchemy import func, select

from storyhub import dates
from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.jobs.models import Job
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.stories.models import Story
from storyhub.themes.models import RunStatus, ThemeRun
from storyhub.transcripts.models import Transcript, Word
from storyhub.transcripts.text import unsure_between

# What the test expects of the demo, written here rather than read from the code under test.
USERNAMES = {"demo-reporter": "/stories/", "demo-facilitator": "/themes/",
             "demo-admin": "/admin/users", "demo-staff": "/"}
ROLES_TOLD = {"person_on_probation", "staff", "peer_mentor"}
NOT_QUOTED = "Ten minutes late"  # its storyteller did not agree to quotes in packs
RELEASED = "Out of the gate with nowhere to sleep"
NAMED_IN_RELEASED = ("Sarah", "Eastgate")  # its case manager and hostel
# The names the demo facilitator gives themes (by what their stories are about).
FACILITATORS_NAMES = {
    "Somewhere to live", "Peer mentors who have been there", "Trust in a steady case manager",
    "Staff time and caseloads", "Mental health support", "Small practical help",
    "Drugs and recovery", "Drink and recovery", "The day of release", "ID and paperwork",
    "Getting to appointments", "Food and the basics", "Work and volunteering", "Family"}
# Every word the demo reporter redacts in the first four stories: those names, nothing else.
REDACTED_IN_FOUR = {"sarah", "eastgate", "house"}


def _passwords(output: str) -> dict[str, str]:
    found = dict(re.findall(r"^\s+(demo-[a-z]+)\s+(\S+)\s", output, re.M))
    assert set(found) == set(USERNAMES), output
    return found


def _sign_in(app, username: str, password: str) -> int:
    client = app.test_client()
    return client.post("/login", data={"username": username, "password": password}).status_code


@pytest.mark.slow
@pytest.mark.one_database  # its queries are covered on PostgreSQL by lighter tests
def test_demo_loads_end_to_end_then_loads_again_with_new_passwords(app, runner):
    result = runner.invoke(args=["demo", "--stories", "4"])
    assert result.exit_code == 0, result.output
    passwords = _passwords(result.output)
    for username, password in passwords.items():
        assert len(password) >= 30, "a long random passphrase"
        assert _sign_in(app, username, password) == 302, username
        assert _sign_in(app, username, password + "x") != 302, "a wrong password fails"
    assert len(set(passwords.values())) == len(passwords)

    with app.app_context():
        loaded = db.session.scalars(select(Story)).all()
        assert len(loaded) == 4
        assert {s.storyteller.role.value for s in loaded} == ROLES_TOLD
        for story in loaded:
            transcript = db.session.scalar(select(Transcript).where(
                Transcript.story_id == story.id))
            assert transcript is not None and transcript.segments, story.title
            assert transcript.reviewed_at is not None, story.title
            assert story.consent is not None and story.consent.transcribe_analyse
        quiet = next(s for s in loaded if s.title == NOT_QUOTED)
        assert not quiet.consent.quote_in_packs
        run = db.session.scalar(select(ThemeRun))
        assert run.status is RunStatus.DONE, run.error
        assert set(run.inputs["stories"]) == {s.id for s in loaded}
        assert len(run.themes) >= 2
        jobs_before = db.session.scalar(select(func.count(Job.id)))
        # The reporter redacted the personal details, and only those: nothing is garbled.
        redacted = {w.text.strip(".,").lower() for w in db.session.scalars(
            select(Word).where(Word.redaction.is_not(None)))}
        assert redacted == REDACTED_IN_FOUR, redacted
        pack = _pack(app)
        if pack is not None:
            assert pack.story_ids, "the pack quotes some stories"
            assert quiet.id not in pack.story_ids, "consent to quotes is respected"
            # Every printed word was heard surely or checked by the reporter.
            for theme in pack.content["themes"]:
                for quote in theme["quotes"]:
                    transcript = db.session.scalar(select(Transcript).where(
                        Transcript.story_id == quote["story_id"]))
                    assert not unsure_between(transcript, "", quote["start"], quote["end"])
    assert f"/themes/runs/{run.id}/board" in result.output
    assert "/library/" in result.output

    # Staff find the demo stories in the library, each with the facilitator's summary.
    staff = app.test_client()
    staff.post("/login", data={"username": "demo-staff", "password": passwords["demo-staff"]})
    listed = staff.get("/library/stories.json").get_json()
    assert listed["total"] == 4, listed
    assert {s["title"] for s in listed["stories"]} == {s.title for s in loaded}
    assert all(s["summary"] for s in listed["stories"])
    # The facilitator named the themes and published them: staff see those names, as the pack.
    shown = {name for s in listed["stories"] for name in s["themes"]}
    assert shown and shown <= FACILITATORS_NAMES, shown
    if pack is not None:
        assert {t["title"] for t in pack.content["themes"]} <= FACILITATORS_NAMES
    found = staff.get("/library/stories.json", query_string={
        "q": "nowhere to sleep", "how": "words"}).get_json()
    assert found["stories"] and found["stories"][0]["title"] == RELEASED
    # The reporter redacted the names StoryHub suggested: staff read and hear them taken out.
    page = staff.get(found["stories"][0]["url"]).get_data(as_text=True)
    assert "rang round" in page
    for name in NAMED_IN_RELEASED:
        assert name not in page, name
    audio = staff.get(found["stories"][0]["url"] + "/audio")
    assert audio.status_code == 200 and audio.data, "the muted copy is ready"

    # Loading again picks up where it left off: nothing new, only new passwords.
    again = runner.invoke(args=["demo", "--stories", "4"])
    assert again.exit_code == 0, again.output
    assert "4 stories (0 added now)" in again.output
    renewed = _passwords(again.output)
    assert _sign_in(app, "demo-reporter", passwords["demo-reporter"]) != 302
    assert _sign_in(app, "demo-reporter", renewed["demo-reporter"]) == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 4
        assert db.session.scalar(select(func.count(ThemeRun.id))) == 1
        assert db.session.scalar(select(func.count(Job.id))) == jobs_before


def _pack(app):
    """The demo's pack, where workshop packs are part of StoryHub."""
    try:
        from storyhub.packs.models import WorkshopPack
    except ImportError:
        return None
    return db.session.scalar(select(WorkshopPack))


def test_demo_refuses_an_instance_with_real_stories(app, runner, make_user, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    audio = tmp_path / "real.wav"
    subprocess.run(["espeak-ng", "-w", str(audio), "The hostel was noisy at night."],
                   check=True)
    reporter_id = make_user(Role.REPORTER, username="rita")
    with app.app_context():

        from storyhub.accounts.models import User

        stories.create_story(
            stories.NewStory(title="A real story", storyteller_role="person_on_probation",
                             story_type="snapshot", recorded_on=dates.today()),
            stories.NewConsent(scopes={Scope.TRANSCRIBE_ANALYSE}, method="spoken",
                               given_on=dates.today(), spoken_at_seconds=0.0),
            audio, db.session.get_one(User, reporter_id))
        db.session.commit()
        users_before = db.session.scalar(select(func.count(User.id)))

    result = runner.invoke(args=["demo", "--stories", "3"])
    assert result.exit_code == 1
    assert "already holds 1 story that is not part of the demo" in result.output
    assert "nothing was changed" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 1
        assert db.session.scalar(select(func.count(User.id))) == users_before
        assert db.session.scalar(select(User).where(User.username == "demo-admin")) is None


def test_demo_refuses_when_its_account_names_belong_to_someone(app, runner, make_user):
    make_user(Role.ADMIN, username="demo-admin")
    result = runner.invoke(args=["demo", "--stories", "3"])
    assert result.exit_code == 1
    assert "An account called “demo-admin” already exists" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 0
