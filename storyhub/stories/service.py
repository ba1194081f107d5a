"""Story verbs: take in a recording with its consent, list and find stories, play them back.

Functions check permissions and consent themselves, flush but never commit.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flask import current_app
from sqlalchemy import Select, select
from sqlalchemy import false as sa_false
from sqlalchemy.exc import IntegrityError

from .. import audit, signals
from ..accounts.models import Role, User
from ..extensions import db
from ..storage import StorageFull, get_storage, track_new_file
from . import audio, consent
from .consent import Scope
from .models import (
    Consent,
    ConsentMethod,
    Recording,
    Story,
    Storyteller,
    StorytellerIdentity,
    StorytellerRole,
    StoryType,
)

logger = logging.getLogger(__name__)

UPLOAD_ROLES = (Role.REPORTER, Role.FACILITATOR, Role.ADMIN)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
FORM_TYPES = {b"%PDF": ("pdf", "application/pdf"), b"\x89PNG": ("png", "image/png"),
              b"\xff\xd8\xff": ("jpg", "image/jpeg")}
MAX_FORM_BYTES = 20 * 1024 * 1024


class StoryError(ValueError):
    """A problem with a story request that the user can fix; the message says how."""


class DuplicateRecording(StoryError):
    def __init__(self, story_id: int):
        super().__init__("This recording has already been uploaded, so it was not stored again.")
        self.story_id = story_id


@dataclass
class NewStory:
    title: str
    storyteller_role: StorytellerRole | str
    story_type: StoryType | str
    recorded_on: date
    storyteller_code: str = ""
    real_name: str = ""
    prompt: str = ""
    site_id: int | None = None
    language: str = "en"
    tags: list[str] = field(default_factory=list)


@dataclass
class NewConsent:
    scopes: set[Scope]
    method: ConsentMethod | str
    given_on: date
    spoken_at_seconds: float | None = None
    form_path: Path | None = None
    witnessed_by: str = ""
    review_on: date | None = None
    store_real_name: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_story(new: NewStory, terms: NewConsent, actor: User) -> None:
    if not actor.has_role(*UPLOAD_ROLES):
        raise PermissionError("Only community reporters, facilitators and admins add stories.")
    if not new.title.strip():
        raise StoryError("Give the story a short title.")
    if new.real_name.strip() and not terms.store_real_name:
        raise StoryError("You entered the storyteller's real name, but they have not agreed to "
                         "it being stored. Leave the name blank, or record that they agreed.")
    if new.recorded_on > date.today():
        raise StoryError("The date recorded cannot be in the future.")
    if new.site_id is not None and actor.role is Role.REPORTER and not actor.all_sites \
            and new.site_id != actor.site_id:
        raise PermissionError("You can only add stories for your own site.")


def _check_consent(terms: NewConsent) -> None:
    if not terms.scopes:
        raise StoryError("Record the storyteller's consent before uploading: tick what they "
                         "agreed to. Nothing has been stored.")
    method = ConsentMethod(terms.method)
    if terms.given_on > date.today():
        raise StoryError("The date consent was given cannot be in the future.")
    if terms.review_on is not None and terms.review_on <= terms.given_on:
        raise StoryError("The consent review date must be after the date consent was given.")
    if method is ConsentMethod.SPOKEN and (terms.spoken_at_seconds is None
                                           or terms.spoken_at_seconds < 0):
        raise StoryError("Say where on the recording the storyteller gives consent "
                         "(minutes and seconds from the start).")
    if method is ConsentMethod.SIGNED_FORM and terms.form_path is None:
        raise StoryError("Upload a photo or scan of the signed consent form (PDF, JPEG or PNG).")


def _form_type(path: Path) -> str:
    if path.stat().st_size > MAX_FORM_BYTES:
        raise StoryError("The consent form file is larger than 20 MB. Take a smaller photo or "
                         "scan and try again.")
    with path.open("rb") as fh:
        head = fh.read(8)
    for magic, (ext, _mime) in FORM_TYPES.items():
        if head.startswith(magic):
            return ext
    raise StoryError("The consent form must be a PDF, JPEG or PNG file.")


def new_storyteller_code() -> str:
    return "ST-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def _storyteller(new: NewStory, terms: NewConsent) -> Storyteller:
    code = new.storyteller_code.strip().upper()
    teller = db.session.scalar(select(Storyteller).where(Storyteller.code == code)) if code \
        else None
    if teller is None:
        teller = Storyteller(code=code or new_storyteller_code(),
                             role=StorytellerRole(new.storyteller_role))
        db.session.add(teller)
    if new.real_name.strip() and terms.store_real_name:
        teller.identity = StorytellerIdentity(real_name=new.real_name.strip())
    return teller


def find_by_sha256(sha: str) -> Recording | None:
    return db.session.scalar(select(Recording).where(Recording.sha256 == sha))


def create_story(new: NewStory, terms: NewConsent, upload: Path, actor: User) -> Story:
    """Store a recording with its story and consent: all of it, or (on any error) none of it."""
    _check_story(new, terms, actor)
    _check_consent(terms)
    form_ext = _form_type(terms.form_path) if terms.form_path is not None else None
    max_seconds = float(current_app.config["MAX_AUDIO_HOURS"]) * 3600
    info = audio.probe(upload, max_seconds)
    sha = _sha256(upload)
    existing = find_by_sha256(sha)
    if existing is not None:
        raise DuplicateRecording(existing.story_id)

    storage = get_storage()
    temps = {name: storage.temp_path(suffix) for name, suffix in
             (("original", ".orig"), ("normalised", ".wav"), ("playback", ".m4a"))}
    try:
        ext, decoded = audio.make_files(upload, info, temps["original"], temps["normalised"],
                                        temps["playback"], max_seconds)
        if terms.spoken_at_seconds is not None and terms.spoken_at_seconds > decoded:
            raise StoryError("The consent time is after the end of the recording "
                             f"({audio.format_duration(decoded)}). Check the minutes and "
                             "seconds.")
        teller = _storyteller(new, terms)
        site_id = new.site_id if new.site_id is not None else actor.site_id
        story = Story(title=new.title.strip(), storyteller=teller,
                      story_type=StoryType(new.story_type), prompt=new.prompt.strip() or None,
                      site_id=site_id, language=new.language or "en",
                      recorded_on=new.recorded_on, reporter_id=actor.id,
                      tags=",".join(sorted({t.strip().lower() for t in new.tags if t.strip()})))
        keys = {
            "original": storage.new_key("audio", f"original.{ext}"),
            "normalised": storage.new_key("audio", "normalised.wav"),
            "playback": storage.new_key("audio", "playback.m4a"),
        }
        story.recording = Recording(
            sha256=sha, original_key=keys["original"], original_format=info.format_name[:64],
            normalised_key=keys["normalised"], playback_key=keys["playback"],
            duration_seconds=round(decoded, 3), channels=info.channels,
            sample_rate=info.sample_rate, size_bytes=upload.stat().st_size)
        story.consent = Consent(
            method=ConsentMethod(terms.method), given_on=terms.given_on,
            review_on=terms.review_on, spoken_at_seconds=terms.spoken_at_seconds,
            witnessed_by=terms.witnessed_by.strip() or None,
            store_real_name=terms.store_real_name, recorded_by_id=actor.id,
            **{scope.value: scope in terms.scopes for scope in Scope})
        db.session.add(story)
        try:
            db.session.flush()
        except IntegrityError:
            # The same recording, uploaded twice at once: the other upload won the race.
            db.session.rollback()
            existing = find_by_sha256(sha)
            if existing is None:
                raise
            raise DuplicateRecording(existing.story_id) from None
        if terms.form_path is not None:
            form_key = storage.new_key("consent-forms", f"form.{form_ext}")
            temps["form"] = storage.temp_path("." + str(form_ext))
            temps["form"].write_bytes(terms.form_path.read_bytes())
            keys["form"] = form_key
            story.consent.form_key = form_key
        # Files go in last: nothing above can fail after them.
        for name, key in keys.items():
            storage.put(temps[name], key)
            track_new_file(db.session, key)
        audit.record("story.create", actor.id, "story", story.id,
                     f"scopes={','.join(sorted(s.value for s in terms.scopes))}")
        signals.story_created.send(story, actor_id=actor.id)
        logger.info("Story %s stored: %.1fs of %s audio", story.id, decoded, info.container)
        return story
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFull(errno.ENOSPC, "The server's storage is full, so the story was not "
                              "saved. Nothing has been stored. Tell your StoryHub admin.") from exc
        raise
    finally:
        for path in temps.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def visible_stories(actor: User) -> Select:
    """Return a query for the stories `actor` may see."""
    query = select(Story).order_by(Story.created_at.desc(), Story.id.desc())
    if actor.has_role(Role.ADMIN, Role.FACILITATOR):
        return query
    if actor.role is Role.REPORTER:
        if actor.all_sites:
            return query
        return query.where((Story.site_id == actor.site_id) | (Story.reporter_id == actor.id))
    return query.where(sa_false())


def can_view(actor: User, story: Story) -> bool:
    if actor.has_role(Role.ADMIN, Role.FACILITATOR):
        return True
    if actor.role is Role.REPORTER:
        return (actor.all_sites or story.reporter_id == actor.id
                or (story.site_id is not None and story.site_id == actor.site_id))
    return False


def get_story(story_id: int, actor: User) -> Story:
    """Return the story if `actor` may see it; raise LookupError or PermissionError."""
    story = db.session.get(Story, story_id)
    if story is None:
        raise LookupError(story_id)
    if not can_view(actor, story):
        raise PermissionError("This story belongs to another site.")
    return story


def playback_path(story: Story, actor: User) -> Path:
    """Return the playback file for `story`, checking access and consent."""
    if not can_view(actor, story):
        raise PermissionError("This story belongs to another site.")
    consent.require(story, Scope.TRANSCRIBE_ANALYSE)
    if story.recording is None:
        raise LookupError(story.id)
    audit.record("story.play", actor.id, "story", story.id)
    return get_storage().path(story.recording.playback_key)


def withdraw_consent(story: Story, actor: User) -> int:
    """Record that the storyteller took their consent back; stop any job not yet finished.

    Returns how many queued or running jobs were stopped. The recording stays until an admin
    erases it, so the withdrawal itself is on record.
    """
    from ..database import utcnow
    from ..jobs import runner as jobs

    if not can_view(actor, story) or not actor.has_role(*UPLOAD_ROLES):
        raise PermissionError("You cannot change this story's consent.")
    if story.consent is None:
        raise StoryError("No consent has been recorded for this story.")
    if story.consent.withdrawn_at is not None:
        raise StoryError("Consent for this story has already been withdrawn.")
    story.consent.withdrawn_at = utcnow()
    stopped = jobs.cancel(story.id, "The storyteller withdrew their consent.")
    audit.record("consent.withdraw", actor.id, "story", story.id)
    return stopped
