"""Builders several test files share: the test password, theme runs, consent scopes, a story a
reporter has told names in, workshops and their packs, and ways to find what they left behind.

Each takes the app (and ids, never ORM objects) and commits, as a request or a job would.
Fixtures that hand these out (`make_user`, `auth`) stay in tests/conftest.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from storyhub.accounts.models import User
from storyhub.extensions import db
from storyhub.jobs.models import Job, JobStatus
from storyhub.jobs.runner import run_job
from storyhub.packs import service as packs
from storyhub.stories import service as stories
from storyhub.stories.consent import Scope
from storyhub.stories.models import Consent, Story, StorytellerIdentity
from storyhub.themes import service as themes
from storyhub.transcripts import service as transcripts

PASSWORD = "correct horse battery"

# Said only in the story `tell_story` tells (typed in by its reporter), and the storyteller's
# name.
PHRASE = "Marigold Wexquayle"
REAL_NAME = "Tobias Quillfeather"


# --- stories and consent -------------------------------------------------------------------

def set_scopes(app, story_id: int, scopes: set[Scope]) -> None:
    """Give a story's consent exactly `scopes`."""
    with app.app_context():
        consent = db.session.scalar(select(Consent).where(Consent.story_id == story_id))
        for scope in Scope:
            setattr(consent, scope.value, scope in scopes)
        db.session.commit()


def tell_story(app, story_id: int, reporter_id: int) -> None:
    """The reporter types a name into the transcript and stores the storyteller's real name."""
    with app.app_context():
        story = db.session.get(Story, story_id)
        reporter = db.session.get(User, reporter_id)
        story.consent.store_real_name = True
        db.session.add(StorytellerIdentity(storyteller_id=story.storyteller_id,
                                           real_name=REAL_NAME))
        segment = transcripts.get_transcript(story).segments[0]
        transcripts.edit_segment(story, segment.id,
                                 f"{segment.text} My caseworker {PHRASE} found me a room, "
                                 f"and {PHRASE} came to court with me.", reporter)
        transcripts.mark_reviewed(story, reporter)
        db.session.commit()


def withdraw_consent(app, story_id: int) -> None:
    """Withdraw consent as the reporter would; no worker runs, so nothing is erased yet."""
    with app.app_context():
        story = db.session.get(Story, story_id)
        stories.withdraw_consent(story, story.reporter)
        db.session.commit()


# --- theme runs ----------------------------------------------------------------------------

def run_now(app, actor_id: int, seeds: str = "") -> int:
    """Queue a run and do it here, as a worker would; return the run id."""
    with app.app_context():
        run = themes.start_run(actor_id, seeds)
        db.session.commit()
        run_id, job_id = run.id, run.job_id
        assert run_job(job_id) == "done"
        return run_id


# --- workshops and packs -------------------------------------------------------------------

def make_workshop(app, data, **fields) -> int:
    """A workshop from the prepared run (`data` of themed_instance), held at the hub."""
    with app.app_context():
        workshop = packs.create_workshop(data["run"], data["facilitator"],
                                         fields.pop("title", "Thursday workshop"),
                                         held_on=date(2026, 12, 10), place="Hope Street hub",
                                         safeguarding_contact="Jo (peer mentor)", **fields)
        db.session.commit()
        return workshop.id


def make_pack(app, workshop_id: int, actor_id: int) -> tuple[int, bool]:
    """Generate the workshop's pack; return its version and whether a new one was made."""
    with app.app_context():
        pack, made = packs.generate_pack(workshop_id, actor_id)
        db.session.commit()
        return pack.version, made


# --- finding what was left -----------------------------------------------------------------

def erase_job(app, story_id: int) -> int:
    """Return the id of the erasure queued for a story."""
    with app.app_context():
        job = db.session.scalar(select(Job).where(
            Job.kind == "erase", Job.target_id == story_id,
            Job.status == JobStatus.QUEUED).order_by(Job.id.desc()).limit(1))
        assert job is not None, "an erasure is queued"
        return job.id


def files_holding(folder: Path, needle: str) -> list[str]:
    """Return the files under `folder` whose bytes hold `needle` (any case)."""
    return [f"file:{path.relative_to(folder)}" for path in folder.rglob("*")
            if path.is_file() and needle.encode() in path.read_bytes().lower()]
