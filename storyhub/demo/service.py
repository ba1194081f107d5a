"""Load the demo project through the real pipeline, as people would through the pages.

A site, accounts for each role, stories with their consent (through the same create-story verb
as an upload), then transcription, a reporter's review, a theme run, the staff library (the
facilitator's summaries and approvals) and a workshop pack. Jobs
are run here with the job runner, as a worker runs them; a job a worker elsewhere already holds
is waited for. The demo is the one place that drives several features in turn, so unlike a
feature it imports them.

Each step does only what is not done yet, so loading again after an interruption picks up where
it stopped. Unlike a service module this one commits: it is the demo command's transaction.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import func, select

from .. import audit, dates
from ..accounts import service as accounts
from ..accounts.models import Role, Site, User
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import ACTIVE, Job, JobStatus
from ..library import publishing
from ..library import service as library
from ..library.models import CurationState
from ..media.audio import format_duration
from ..redaction import service as redaction
from ..stories import service as stories
from ..stories.models import Recording, Story, StorytellerRole
from ..themes import facilitator_edits
from ..themes import service as themes
from ..themes.models import ThemePassage, ThemeRun
from ..transcripts import service as transcripts
from ..transcripts import unsure
from ..transcripts.text import is_unsure
from . import content
from .content import ACCOUNTS, DemoAccount

logger = logging.getLogger(__name__)
JOB_TIMEOUT = 900.0
Echo = Callable[[str], None]


class DemoRefused(Exception):
    """The demo must not be loaded into this instance; the message says why."""


class DemoFailed(Exception):
    """A step of the demo did not complete; the message says which and why."""


@dataclass
class LoadedAccount:
    account: DemoAccount
    password: str


@dataclass
class DemoResult:
    accounts: list[LoadedAccount]
    story_ids: list[int]
    added: int
    run_id: int
    workshop_id: int | None = None
    pack: Any = None
    pack_version: int | None = None
    packs_note: str = ""  # why there is no pack, when there is none
    in_library: int = 0  # stories staff can read now
    to_curate: int = 0  # reviewed stories left for the facilitator to approve
    timings: dict[str, float] = field(default_factory=dict)


def real_stories() -> int:
    """Return how many stories in this instance are not the demo's."""
    hashes = content.recording_hashes()
    found = db.session.execute(select(Story.id, Recording.sha256)
                               .outerjoin(Recording, Recording.story_id == Story.id)).all()
    return sum(1 for _id, sha in found if sha not in hashes)


def check_instance() -> bool:
    """Raise DemoRefused unless the demo may load here; return whether it is loaded already."""
    real = real_stories()
    if real:
        held = "1 story that is" if real == 1 else f"{real} stories that are"
        raise DemoRefused(
            f"This instance already holds {held} not part of the demo, so the demo was not "
            "loaded and nothing was changed. The demo goes into a fresh instance only: set "
            "STORYHUB_INSTANCE_PATH to a new folder (and STORYHUB_DATABASE_URL, if you use "
            "one) and run it there.")
    loaded = bool(db.session.scalar(select(func.count(Story.id))))
    if not loaded:
        for account in ACCOUNTS:
            if accounts.get_user_by_username(account.username) is not None:
                raise DemoRefused(
                    f"An account called “{account.username}” already exists here but the demo "
                    "is not loaded, so it is someone's own account. Nothing was changed: load "
                    "the demo into a fresh instance.")
    return loaded


def _site() -> Site:
    info = content.site()
    site = db.session.scalar(select(Site).where(Site.name == info["name"]))
    if site is None:
        site = accounts.create_site(info["name"], actor_id=None)
    site.local_terms = "\n".join(info["local_terms"])
    return site


def _accounts(site_id: int) -> list[LoadedAccount]:
    """Make each demo account, or give it a new password (printed once, never stored)."""
    made = []
    for account in ACCOUNTS:
        password = content.passphrase()
        user = accounts.get_user_by_username(account.username)
        if user is None:
            accounts.create_user(account.username, account.display_name, account.role,
                                 password, site_id=site_id)
        else:
            accounts.set_password(user, password, actor_id=None)
        made.append(LoadedAccount(account, password))
    db.session.flush()
    return made


def _user(role: Role) -> User:
    """Return the demo account for `role` (looked up afresh: running a job closes the session)."""
    username = next(a.username for a in ACCOUNTS if a.role is role)
    user = accounts.get_user_by_username(username)
    if user is None:
        raise DemoFailed(f"The demo account “{username}” is missing.")
    return user


def _add_stories(chosen: list[content.DemoStory], site_id: int, echo: Echo) -> tuple[list[int],
                                                                                    int]:
    """Store each story with its consent, as a reporter's upload would; return ids, added."""
    ids, added = [], 0
    codes: dict[str, str] = {}  # the demo's name for a storyteller -> the code StoryHub gave
    for n, item in enumerate(chosen, 1):
        existing = stories.find_by_sha256(content.recording_hash(item))
        if existing is not None:
            ids.append(existing.story_id)
            codes.setdefault(item.storyteller, existing.story.storyteller.code)
            continue
        reporter = _user(Role.REPORTER)
        new = stories.NewStory(
            title=item.title, storyteller_role=item.storyteller_role,
            story_type=item.story_type, recorded_on=item.recorded_on,
            storyteller_code=codes.get(item.storyteller, ""), prompt=item.prompt,
            site_id=site_id, tags=list(item.tags))
        # The reporter asked for consent at the start of the recording and ticked what the
        # storyteller agreed to; a year on, it is due for review.
        terms = stories.NewConsent(
            scopes=set(item.consent), method="spoken", given_on=item.recorded_on,
            spoken_at_seconds=0.0, review_on=item.recorded_on + timedelta(days=365))
        story = stories.create_story(new, terms, item.audio, reporter)
        duration = story.recording.duration_seconds if story.recording else 0.0
        codes.setdefault(item.storyteller, story.storyteller.code)
        db.session.commit()
        ids.append(story.id)
        added += 1
        role = StorytellerRole(item.storyteller_role).label.lower()
        echo(f"  [{n:>2}/{len(chosen)}] {item.title} ({role}, {format_duration(duration)})")
    return ids, added


def settle(job_id: int, what: str, timeout: float = JOB_TIMEOUT) -> None:
    """Run the job here until it is done, or wait while a worker elsewhere holds it."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # see what other processes committed
        job = db.session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise DemoFailed(f"{what}: its job has gone.")
        status, error = job.status, job.error
        db.session.commit()
        if status is JobStatus.DONE:
            return
        if status is JobStatus.FAILED:
            raise DemoFailed(f"{what} failed: {error}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what} did not finish within {timeout / 60:.0f} minutes. Run "
                             "`storyhub demo` again to carry on where it stopped.")
        if status is not JobStatus.QUEUED or jobs.run_job(job_id) == "skipped":
            time.sleep(1)


def _transcribe(ids: list[int], echo: Echo) -> None:
    for n, story_id in enumerate(ids, 1):
        story = db.session.get_one(Story, story_id)
        if transcripts.get_transcript(story) is not None:
            continue
        job = transcripts.start_transcription(story, None)
        db.session.commit()
        job_id, title = job.id, story.title
        started = time.perf_counter()
        settle(job_id, f"Transcribing “{title}”")
        echo(f"  [{n:>2}/{len(ids)}] {title}: transcribed in "
             f"{time.perf_counter() - started:.1f} s")


def _plain(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def _check_words(story: Story, reporter: User, said: str) -> tuple[int, int]:
    """Check the transcript against what the storyteller said, as the reporter does while
    listening: confirm each word the recogniser was unsure of that it heard right, and put
    what was said in place of whatever it heard wrong. Return (confirmed, corrected)."""
    transcript = transcripts.get_transcript(story)
    if transcript is None:
        return 0, 0
    heard = [w for segment in transcript.segments for w in segment.words]
    spoken = said.split()
    matcher = SequenceMatcher(a=[_plain(w.text) for w in heard], b=[_plain(t) for t in spoken],
                              autojunk=False)
    confirm: list[int] = []
    corrections: list[tuple[int, str]] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            confirm += [w.id for w in heard[a0:a1] if is_unsure(w)]
        elif a1 > a0:  # heard wrong (or heard what was not said): what was said goes in its place
            corrections.append((heard[a0].id, " ".join(spoken[b0:b1])))
            corrections += [(w.id, "") for w in heard[a0 + 1:a1]]
        elif a0 > 0:  # said but not heard at all: it follows the word before
            before = heard[a0 - 1]
            corrections.append((before.id, " ".join([spoken[b0 - 1], *spoken[b0:b1]])))
    if confirm:
        unsure.confirm_words(story, confirm, reporter)
    for word_id, text in reversed(corrections):  # from the end: earlier words stay put
        try:
            unsure.correct_word(story, word_id, text, reporter)
        except (LookupError, transcripts.TranscriptError):
            continue  # a passage's only word, say: left as heard
    return len(confirm), len(corrections)


def _decide_redactions(story: Story, reporter: User, personal: tuple[str, ...]) -> None:
    """Redact the personal details the reporter knows the story holds, and say the rest of
    StoryHub's suggestions are not personal (as the reporter would, one by one)."""
    known = {_plain(word) for phrase in personal for word in phrase.split()}
    found = redaction.offers(story, reporter)
    taken = [o.value for o in found if {_plain(w) for w in o.suggestion.text.split()} & known]
    if taken:
        redaction.accept(story, reporter, taken)
    kept = [o.value for o in found if o.value not in taken]
    if kept:
        redaction.reject(story, reporter, kept)
    for phrase in personal:  # what StoryHub did not suggest, the reporter redacts by hand
        for part in phrase.split():
            try:
                redaction.redact_phrase(story, reporter, part, "[PLACE]" if phrase in
                                        content.site()["local_terms"] else "[NAME]")
            except transcripts.TranscriptError:
                continue  # not in the transcript (misheard, or redacted already)


def _review(chosen: list[content.DemoStory], ids: list[int]) -> int:
    """Check the words the recogniser was unsure of, redact the personal details and mark each
    transcript reviewed, as the reporter who gathered the story would; make the muted copies
    others hear. Return how many were reviewed."""
    reporter = _user(Role.REPORTER)
    reviewed = 0
    for item, story_id in zip(chosen, ids, strict=True):
        story = db.session.get_one(Story, story_id)
        transcript = transcripts.get_transcript(story)
        if transcript is not None and transcript.reviewed_at is None:
            _check_words(story, reporter, item.said)
            _decide_redactions(story, reporter, item.personal)
            transcripts.mark_reviewed(story, reporter)
            reviewed += 1
    db.session.commit()
    muting = db.session.scalars(select(Job.id).where(
        Job.kind == redaction.KIND, Job.target_id.in_(ids),
        Job.status.in_(ACTIVE))).all()
    for job_id in muting:
        settle(job_id, "Muting the redacted words in a recording")
    return reviewed


def _theme_run(ids: list[int], facilitator_id: int) -> int:
    """Return a finished theme run over the demo stories, running one if there is none."""
    run = themes.latest_run(done_only=True)
    if run is not None and set(ids) <= set(run.inputs.get("stories", ())):
        return run.id
    try:
        run = themes.start_run(facilitator_id)
    except themes.RunConflict:
        run = themes.active_run()
    except themes.ThemeError as exc:
        raise DemoFailed(str(exc)) from exc
    if run is None:
        raise DemoFailed("The theme run could not be started.")
    db.session.commit()
    run_id, job_id = run.id, run.job_id
    if job_id is None:
        raise DemoFailed("The theme run could not be started.")
    settle(job_id, "The theme run")
    return run_id


def _name_and_publish(chosen: list[content.DemoStory], ids: list[int], run_id: int,
                      facilitator_id: int) -> int:
    """Name each shown theme as the facilitator would, by what its stories are about (the tag
    they share most), and publish the run to the staff library. Return how many themes."""
    facilitator = db.session.get_one(User, facilitator_id)
    run = db.session.get_one(ThemeRun, run_id)
    if run.published_at is not None:
        return len(publishing.to_publish(run))
    tags = {story_id: item.tags for item, story_id in zip(chosen, ids, strict=True)}
    names = content.theme_names()
    taken: set[str] = set()
    for theme in publishing.to_publish(run):
        counts = Counter(tag for row in db.session.scalars(select(ThemePassage).where(
            ThemePassage.theme_id == theme.id)) for tag in tags.get(row.story_id, ()))
        # The tag most of its passages share, in the order they were first seen on a tie.
        for tag, _count in counts.most_common():
            name = names.get(tag)
            if name and name not in taken:
                taken.add(name)
                facilitator_edits.rename(run, theme.id, name, theme.description or "",
                                       facilitator_id)
                break
        else:  # the themes before took its stories' subjects: keep it off the staff library
            facilitator_edits.set_hidden(run, theme.id, True, facilitator_id)
    db.session.flush()
    try:
        publishing.publish(run.id, facilitator)
    except publishing.PublishError as exc:
        raise DemoFailed(f"The themes could not be published to the staff library: {exc}") \
            from exc
    db.session.commit()
    return len(publishing.to_publish(run))


def _curate(chosen: list[content.DemoStory], ids: list[int], facilitator_id: int,
            result: DemoResult) -> None:
    """Put the stories the demo has a summary for in the staff library, as the facilitator
    would; the rest are left for the facilitator to summarise and approve."""
    facilitator = db.session.get_one(User, facilitator_id)
    for item, story_id in zip(chosen, ids, strict=True):
        entry = library.entry_of(story_id)
        if entry is not None and entry.state is CurationState.APPROVED:
            result.in_library += 1
            continue
        if not item.library_summary or entry is not None:  # a facilitator's own draft stays
            result.to_curate += 1
            continue
        story = db.session.get_one(Story, story_id)
        try:
            library.save_curation(story, facilitator, item.library_summary)
            library.approve(story, facilitator)
        except library.LibraryError as exc:
            raise DemoFailed(f"“{item.title}” could not go in the staff library: {exc}") from exc
        result.in_library += 1
    db.session.commit()


def _pack(result: DemoResult, facilitator_id: int, site_name: str) -> None:
    """Build a workshop from the run and generate its pack, where packs are part of StoryHub."""
    try:
        packs: Any = importlib.import_module("storyhub.packs.service")
        models: Any = importlib.import_module("storyhub.packs.models")
    except ImportError:
        result.packs_note = "Workshop packs are not part of this version of StoryHub yet."
        return
    workshop = db.session.scalar(select(models.Workshop).where(
        models.Workshop.run_id == result.run_id).order_by(models.Workshop.id).limit(1))
    if workshop is None:
        workshop = packs.create_workshop(
            run_id=result.run_id, actor_id=facilitator_id,
            title="Conversations for Change: what helps people on probation",
            held_on=dates.today() + timedelta(days=14), place=f"{site_name}, meeting room 2",
            audience="mixed", facilitators="Dee (demo facilitator) with a peer mentor")
        # The facilitator takes out a quote whose unsure words the reporter could not check
        # (StoryHub chose those last); the pack prints only words a person has looked at.
        checked = packs.assemble_checked(workshop, db.session.get(User, facilitator_id))
        for theme in workshop.themes:
            for quote in list(theme.quotes):
                if checked.quote_kinds.get(quote.id) == "unsure":
                    theme.quotes.remove(quote)
        db.session.flush()
    result.workshop_id = workshop.id
    try:
        result.pack, _new = packs.generate_pack(workshop.id, facilitator_id)
    except packs.PackError as exc:
        raise DemoFailed(f"The workshop pack could not be generated: {exc}") from exc
    result.pack_version = result.pack.version
    db.session.commit()


def load(limit: int | None = None, echo: Echo = print) -> DemoResult:
    """Load the demo (its first `limit` stories) into this instance; raise DemoRefused if not."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    started = clock

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    check_instance()
    site = _site()
    site_id, site_name = site.id, site.name
    made = _accounts(site_id)
    chosen = content.stories(limit)
    echo(f"Adding {len(chosen)} stories with their consent, as the demo reporter…")
    ids, added = _add_stories(chosen, site_id, echo)
    db.session.commit()  # the new passwords, if no story was new
    lap("stories")
    echo("Transcribing them with the speech model (the first one loads the model)…")
    _transcribe(ids, echo)
    lap("transcription")
    reviewed = _review(chosen, ids)
    echo(f"Marked {reviewed} transcripts reviewed, as the reporter would after checking them.")
    echo("Finding themes across the stories…")
    facilitator_id = _user(Role.FACILITATOR).id
    run_id = _theme_run(ids, facilitator_id)
    lap("themes")
    result = DemoResult(made, ids, added, run_id, timings=timings)
    named = _name_and_publish(chosen, ids, run_id, facilitator_id)
    echo(f"Named the {named} themes as the facilitator would, and published them to the staff "
         "library.")
    _curate(chosen, ids, facilitator_id, result)
    echo(f"The staff library holds {result.in_library} of the stories, summarised and approved "
         f"as the facilitator would; {result.to_curate} left for the facilitator to curate.")
    lap("library")
    echo("Building a workshop from the themes, and its pack…")
    _pack(result, facilitator_id, site_name)
    lap("pack")
    audit.record("demo.load", None, "theme_run", run_id, f"stories={len(ids)},added={added}")
    db.session.commit()
    timings["total"] = time.perf_counter() - started
    logger.info("Demo loaded: %s stories (%s new) in %.1fs", len(ids), added, timings["total"])
    return result
