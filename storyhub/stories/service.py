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

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from .. import audit, dates, policy, signals
from ..accounts.models import Role, User
from ..config import settings
from ..database import utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..keys import new_story_key, story_key
from ..media import audio
from ..storage import StorageFull, StoredFile, get_storage, track_new_file
from .consent import Scope
from .erasure import request_erasure
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
    if not policy.may(actor, policy.Work.GATHER):
        raise policy.AccessDenied("Only community reporters, facilitators and admins add "
                                  "stories.")
    if not new.title.strip():
        raise StoryError("Give the story a short title.")
    if new.real_name.strip() and not terms.store_real_name:
        raise StoryError("You entered the storyteller's real name, but they have not agreed to "
                         "it being stored. Leave the name blank, or record that they agreed.")
    if new.recorded_on > dates.today():
        raise StoryError("The date recorded cannot be in the future.")
    if new.site_id is not None and actor.role is Role.REPORTER and not actor.all_sites \
            and new.site_id != actor.site_id:
        raise policy.AccessDenied("You can only add stories for your own site.")


def _check_consent(terms: NewConsent) -> None:
    if not terms.scopes:
        raise StoryError("Record the storyteller's consent before uploading: tick what they "
                         "agreed to. Nothing has been stored.")
    method = ConsentMethod(terms.method)
    if terms.given_on > dates.today():
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


UNKNOWN_CODE = ("No storyteller with that code has told a story at this site. Check the code, "
                "or leave it blank for a new storyteller.")


def _storyteller(new: NewStory, site_id: int | None) -> Storyteller:
    """The storyteller with the code given, at the story's own site; or a new one.

    A code from another site is answered exactly as an unknown one: nothing shows it exists.
    """
    code = new.storyteller_code.strip().upper()
    if not code:
        # Stored with its story.
        return Storyteller(code=new_storyteller_code(),
                           role=StorytellerRole(new.storyteller_role), site_id=site_id)
    known = db.session.scalar(select(Storyteller).where(
        Storyteller.code == code, Storyteller.site_id.is_not_distinct_from(site_id)))
    if known is None:
        raise StoryError(UNKNOWN_CODE)
    return known


def find_by_sha256(sha: str) -> Recording | None:
    return db.session.scalar(select(Recording).where(Recording.sha256 == sha))


def create_story(new: NewStory, terms: NewConsent, upload: Path, actor: User) -> Story:
    """Store a recording with its story and consent: all of it, or (on any error) none of it."""
    _check_story(new, terms, actor)
    _check_consent(terms)
    site_id = new.site_id if new.site_id is not None else actor.site_id
    teller = _storyteller(new, site_id)
    form_ext = _form_type(terms.form_path) if terms.form_path is not None else None
    limits = audio.Limits.from_config(settings())
    info = audio.probe(upload, limits)
    sha = _sha256(upload)
    existing = find_by_sha256(sha)
    if existing is not None:
        raise DuplicateRecording(existing.story_id)

    storage = get_storage()
    temps = {name: storage.temp_path(suffix) for name, suffix in
             (("original", ".orig"), ("normalised", ".wav"), ("playback", ".m4a"))}
    try:
        ext, decoded = audio.make_files(upload, info, temps["original"], temps["normalised"],
                                        temps["playback"], limits)
        if terms.spoken_at_seconds is not None and terms.spoken_at_seconds > decoded:
            raise StoryError("The consent time is after the end of the recording "
                             f"({audio.format_duration(decoded)}). Check the minutes and "
                             "seconds.")
        if new.real_name.strip() and terms.store_real_name:
            teller.identity = StorytellerIdentity(real_name=new.real_name.strip())
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
        data_key = new_story_key(story)
        if terms.form_path is not None:
            form_key = storage.new_key("consent-forms", f"form.{form_ext}")
            temps["form"] = storage.temp_path("." + str(form_ext))
            temps["form"].write_bytes(terms.form_path.read_bytes())
            keys["form"] = form_key
            story.consent.form_key = form_key
        # Files go in last: nothing above can fail after them.
        for name, key in keys.items():
            storage.put(temps[name], key, data_key)
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
    """Return a query for the stories `actor` may see, newest first."""
    return (select(Story).where(policy.visible(actor))
            .order_by(Story.created_at.desc(), Story.id.desc()))


def get_story(story_id: int, actor: User, action: policy.Action = policy.Action.SEE) -> Story:
    """Return the story if `actor` may do `action` to it; raise LookupError or AccessDenied."""
    story = db.session.get(Story, story_id)
    if story is None:
        raise LookupError(story_id)
    policy.require(actor, story, action)
    return story


def playback_file(story: Story, actor: User, action: policy.Action = policy.Action.PLAY,
                  curated: bool = False) -> StoredFile:
    """Return the recording `actor` may listen to: whole, or muted over redacted words.

    `action` and `curated`: as the policy asks (the staff library listens with its own action).
    """
    form = policy.require(actor, story, action, curated=curated)
    if story.recording is None:
        raise LookupError(story.id)
    recording = story.recording
    key = recording.playback_key
    if form is not policy.Form.FULL:
        if recording.redaction_pending:
            raise policy.AccessDenied("The recording is being prepared with the redacted words "
                                      "muted. Try again in a minute.")
        key = recording.redacted_playback_key or key
    return get_storage().file(key, story_key(story))


@dataclass
class ConsentChange:
    """What the storyteller agrees to now, and when they told the reporter."""

    scopes: set[Scope]
    confirmed_on: date
    how: str = "in_person"
    review_on: date | None = None


def change_consent(story: Story, change: ConsentChange, actor: User) -> set[Scope]:
    """Record a change of consent; erase what a scope taken back had made. Returns it.

    Widening or renewing consent needs the storyteller's word as much as narrowing it, so each
    change is audited with when and how they gave it (never with what they said).
    """
    policy.require(actor, story, policy.Action.CONSENT)
    consent = story.consent
    if consent is None:
        raise StoryError("No consent has been recorded for this story.")
    if not change.scopes:
        raise StoryError("The storyteller has taken back every use of their story: use "
                         "“Withdraw consent” instead, which erases it.")
    today = dates.today()
    if change.confirmed_on > today:
        raise StoryError("The date the storyteller told you cannot be in the future.")
    if change.review_on is not None and change.review_on <= today:
        raise StoryError("The new review date must be in the future.")
    before = {scope for scope in Scope if getattr(consent, scope.value)}
    removed, added = before - change.scopes, change.scopes - before
    renewed = change.review_on != consent.review_on
    if not removed and not added and not renewed:
        raise StoryError("Nothing has changed: tick or untick what the storyteller agrees to, "
                         "or set a new review date.")
    for scope in Scope:
        setattr(consent, scope.value, scope in change.scopes)
    consent.review_on = change.review_on
    if Scope.TRANSCRIBE_ANALYSE in removed:
        jobs.cancel(story.id, "The storyteller no longer agrees to their story being "
                              "transcribed.")
    parts = [f"taken back: {', '.join(sorted(removed))}" if removed else "",
             f"added: {', '.join(sorted(added))}" if added else "",
             f"review by {change.review_on:%Y-%m-%d}" if change.review_on and renewed else "",
             f"told {change.how} on {change.confirmed_on:%Y-%m-%d}"]
    audit.record("consent.change", actor.id, "story", story.id,
                 detail="; ".join(part for part in parts if part))
    if removed:
        request_erasure(story, actor, scopes=removed, reason="consent narrowed")
    return removed


def rename_story(story: Story, title: str, actor: User) -> None:
    """Give the story a new title (one that does not name its storyteller, say)."""
    policy.require(actor, story, policy.Action.EDIT)
    title = " ".join(title.split())
    if not title:
        raise StoryError("Give the story a title.")
    if len(title) > 200:
        raise StoryError(f"Keep the title to 200 characters or fewer; it is {len(title)}.")
    if title == story.title:
        return
    story.title = title
    db.session.flush()
    audit.record("story.rename", actor.id, "story", story.id)
    signals.story_renamed.send(story.id)


def withdraw_consent(story: Story, actor: User) -> int:
    """Record that the storyteller took their consent back, stop its jobs, and erase it.

    Returns how many queued or running jobs were stopped. The erasure runs as a job (see
    erasure.py); until it has, nothing can use the story (the policy refuses everything).
    """
    policy.require(actor, story, policy.Action.CONSENT)
    if story.consent is None:
        raise StoryError("No consent has been recorded for this story.")
    story.consent.withdrawn_at = utcnow()
    stopped = jobs.cancel(story.id, "The storyteller withdrew their consent.")
    audit.record("consent.withdraw", actor.id, "story", story.id)
    request_erasure(story, actor, reason="consent withdrawn")
    return stopped


def erase_on_request(story: Story, actor: User) -> None:
    """Erase a story on request (an admin's action): stop every use now, erase in a job."""
    policy.require(actor, story, policy.Action.ERASE)
    if story.consent is not None and story.consent.withdrawn_at is None:
        story.consent.withdrawn_at = utcnow()
    jobs.cancel(story.id, "This story is being erased.")
    request_erasure(story, actor, reason="erased on request")
