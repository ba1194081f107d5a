"""Theme run verbs: choose the stories, queue a run, run it in a worker, read the results.

Consent is checked here, not only in the pages: a story enters a run only if its consent
covers analysis (checked when the run is queued and again in the worker), and a story whose
consent is withdrawn later disappears from every theme page at once.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from .. import audit, bundled_models, keys, policy, sealed
from ..config import settings
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job, JobStatus
from ..media.audio import cut_clip
from ..storage import StoredFile, get_storage
from ..stories.models import Story
from ..stories.service import playback_file
from ..transcripts.models import Transcript
from . import modeling
from .models import Passage, RunStatus, ThemePassage, ThemeRun
from .passages import split_passages

logger = logging.getLogger(__name__)
KIND = "themes"
JOB_KEY = "themes:run"  # one run at a time


class ThemeError(ValueError):
    """A theme request the user can fix; the message says how."""


class RunConflict(ThemeError):
    """Another run is queued or working: one at a time."""


@dataclass
class Readiness:
    """Which stories a new run would use, and why others are left out."""

    ready: list[Story]
    not_reviewed: int
    no_consent: int


def readiness() -> Readiness:
    """Return the stories with a reviewed transcript whose consent covers analysis."""
    rows = db.session.execute(
        select(Story, Transcript).join(Transcript, Transcript.story_id == Story.id)
        .order_by(Story.id)).all()
    ready, not_reviewed, no_consent = [], 0, 0
    for story, transcript in rows:
        if not policy.decide(None, story, policy.Action.ANALYSE).allowed:
            no_consent += 1
        elif transcript.reviewed_at is None:
            not_reviewed += 1
        else:
            ready.append(story)
    return Readiness(ready, not_reviewed, no_consent)


def latest_run(done_only: bool = False) -> ThemeRun | None:
    query = select(ThemeRun).order_by(ThemeRun.number.desc()).limit(1)
    if done_only:
        query = query.join(Job, ThemeRun.job_id == Job.id).where(Job.status == JobStatus.DONE)
    return db.session.scalar(query)


def active_run() -> ThemeRun | None:
    job = jobs.active_job(JOB_KEY)
    return db.session.scalar(select(ThemeRun).where(ThemeRun.job_id == job.id)) if job else None


def _still_working(run: ThemeRun | None) -> RunConflict:
    number = f"Run {run.number}" if run else "Another run"
    return RunConflict(f"{number} is still working. Wait for it to finish.")


def start_run(actor_id: int, seeds_text: str = "") -> ThemeRun:
    """Queue a theme run over every story ready for analysis (one run at a time)."""
    seeds = modeling.SeedTheme.parse_lines(seeds_text)
    if len(seeds) > 30:
        raise ThemeError("Give at most 30 expected themes.")
    minimum = settings().theme_min_stories
    found = readiness()
    if len(found.ready) < minimum:
        raise ThemeError(
            f"Finding themes needs at least {minimum} stories with a reviewed transcript and "
            f"consent to analysis; {len(found.ready)} are ready. Review more transcripts first.")
    if (active := active_run()) is not None:
        raise _still_working(active)
    number = (db.session.scalar(select(func.max(ThemeRun.number))) or 0) + 1
    previous = latest_run(done_only=True)
    run = ThemeRun(number=number, created_by_id=actor_id, seeds=[
        {"name": s.name, "keywords": s.keywords} for s in seeds],
        previous_run_id=previous.id if previous else None,
        inputs={"stories": [s.id for s in found.ready]})
    try:
        db.session.add(run)
        db.session.flush()
        run.job = jobs.enqueue(KIND, key=JOB_KEY, target_id=run.id)
    except jobs.JobConflict:
        raise _still_working(active_run()) from None
    except IntegrityError:
        # Two facilitators pressed "Find themes" at the same moment; the other one won.
        raise RunConflict("Another run has just been started. Wait for it to finish.") from None
    audit.record("themes.run", actor_id, "theme_run", run.id)
    return run


def retry_run(run: ThemeRun, actor_id: int) -> None:
    """Start a failed run again, with fresh attempts."""
    if run.job is None or run.status is not RunStatus.FAILED:
        raise ThemeError(f"Run {run.number} has not failed, so there is nothing to retry.")
    try:
        jobs.retry(run.job)
        db.session.flush()
    except jobs.JobConflict:
        raise _still_working(active_run()) from None
    except IntegrityError:
        raise RunConflict("Another run has just been started. Wait for it to finish.") from None
    audit.record("themes.retry", actor_id, "theme_run", run.id)


def run_status(run: ThemeRun) -> dict:
    job = run.job
    data = {"status": run.status.value, "progress": 100.0 if run.status is RunStatus.DONE
            else 0.0, "seconds_left": None, "error": run.error,
            "attempts": job.attempts if job else 0}
    if job is not None and run.status is not RunStatus.DONE:
        data.update(progress=round(job.progress, 1), seconds_left=job.seconds_left)
    return data


def passages_for(story: Story, transcript: Transcript) -> list[Passage]:
    """Return the story's passages, reusing rows (and cached embeddings) found before."""
    existing = {p.digest: p for p in db.session.scalars(
        select(Passage).where(Passage.story_id == story.id))}
    rows = []
    for pos, found in enumerate(split_passages(transcript)):
        row = existing.get(found.digest)
        if row is None:
            row = Passage(story_id=story.id, digest=found.digest, position=pos,
                          speaker=found.speaker[:60], start=found.start, end=found.end,
                          text=found.text, word_count=found.word_count)
            db.session.add(row)
        rows.append(row)
    return rows


def no_passage_stories(run: ThemeRun) -> list[tuple[Story, str]]:
    """Return the run's stories that gave no passage, and why (consent permitting)."""
    rows = run.results.get("no_passage", []) if run.results else []
    allowed = consented_story_ids({r["story"] for r in rows})
    out = []
    for row in rows:
        story = db.session.get(Story, row["story"])
        if story is not None and story.id in allowed:
            out.append((story, row["reason"]))
    return out


def embedding_model_id() -> str:
    """Return the id kept with each passage's embedding: a cached vector is reused only by the
    model that made it (a bundled model's own id, else THEME_EMBEDDING_MODEL as given)."""
    model = settings().theme_embedding_model or modeling.DEFAULT_EMBEDDING_MODEL
    return (bundled_models.MODELS[model].id if bundled_models.is_bundled(model, "sentence")
            else model)


def embed_missing(texts: list[str], cached: list[bytes | None], model: str,
                  report: Callable[[float], None]) -> tuple[np.ndarray, dict[int, bytes]]:
    """Return embeddings for `texts`, computing only those not `cached`, and the new ones.

    The same words said twice (another run, another speaker) are embedded once.
    """
    by_text = {text: vector for text, vector in zip(texts, cached, strict=True) if vector}
    todo = sorted({text for text in texts if text not in by_text})
    batch = 64
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        for text, vector in zip(part, modeling.embed(part, model), strict=True):
            by_text[text] = vector.astype(np.float32).tobytes()
        report(start / max(len(todo), 1))
    new = {i: by_text[text] for i, (text, vector) in enumerate(zip(texts, cached, strict=True))
           if not vector}
    logger.info("Embedded %d of %d passages (the rest were cached)", len(todo), len(texts))
    return np.stack([np.frombuffer(by_text[t], dtype=np.float32) for t in texts]), new


# A saved model is sealed like a story's audio, but no story's key fits it: it holds the words
# of every story in the run, and it must become unreadable as soon as any one of them leaves
# (the model is deleted then). One key for all theme models, derived from the master key,
# would leave every deleted model readable from an old backup for as long as that master key
# lives. So each run's model has a random key of its own, wrapped by the master key as a
# story's is (and rewrapped with them on rotation); deleting the model clears the wrapped key,
# which shreds every copy of the files. It is the run's, not the job's, so a re-run of the
# same run replaces both.
MODEL_KEY_CONTEXT = "storyhub-theme-run-{}"


def model_folder_key(run: ThemeRun) -> str:
    return f"themes/run-{run.id}"


def model_data_key(run: ThemeRun) -> bytes | None:
    """Return the key of the run's saved model (None: saved before models were sealed)."""
    if not run.model_wrapped_key:
        return None
    return sealed.unwrap_key(keys.masters(), run.model_wrapped_key,
                             MODEL_KEY_CONTEXT.format(run.id))


def load_run_model(run: ThemeRun):
    """Return the run's saved BERTopic model (for reuse and audit); LookupError if it has none.

    Its files are opened into a private temporary folder only while BERTopic reads them.
    """
    if not run.model_key:
        raise LookupError(f"Run {run.number} has no saved model: it was deleted when a story "
                          "left the run or a transcript changed. Find themes again.")
    storage = get_storage()
    scratch = storage.temp_folder()
    try:
        return modeling.load_model(storage.path(run.model_key), model_data_key(run),
                                   run.model_key, scratch,
                                   settings().theme_embedding_model)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def consented_story_ids(story_ids) -> set[int]:
    """Return those of `story_ids` whose consent still covers analysis (checked on every read)."""
    stories = db.session.scalars(select(Story).where(Story.id.in_(list(story_ids)))
                                 .options(selectinload(Story.consent))).all()
    return {s.id for s in stories if policy.decide(None, s, policy.Action.ANALYSE).allowed}


def run_passages(run: ThemeRun) -> list[ThemePassage]:
    """Return the run's passages whose stories may still be analysed, in story order."""
    story = joinedload(ThemePassage.passage).joinedload(Passage.story)
    rows = db.session.scalars(
        select(ThemePassage).join(Passage).where(ThemePassage.run_id == run.id)
        .options(story.joinedload(Story.storyteller), story.joinedload(Story.consent),
                 story.joinedload(Story.recording), joinedload(ThemePassage.theme))
        .order_by(Passage.story_id, Passage.position)).all()
    allowed = consented_story_ids({r.passage.story_id for r in rows})
    return [r for r in rows if r.passage.story_id in allowed]


def get_run(run_id: int) -> ThemeRun:
    run = db.session.get(ThemeRun, run_id)
    if run is None:
        raise LookupError(run_id)
    return run


def quote_clip(run: ThemeRun, passage_id: int, actor) -> tuple[StoredFile, int]:
    """Return a clip of one quote's audio that `actor` may play in a workshop, and its story.

    Clips are cut once from the (muted) playback copy and kept beside it; they go when the
    story or its consent to play does, and are cut again when the muted copy changes.
    """
    import hashlib

    row = db.session.get(ThemePassage, (run.id, passage_id))
    if row is None:
        raise LookupError(passage_id)
    story = row.passage.story
    policy.require(actor, story, policy.Action.PLAY_CLIP)
    source = playback_file(story, actor)
    passage = row.passage
    tag = hashlib.sha256(f"{source.key}|{passage.start:.2f}|{passage.end:.2f}".encode())
    storage = get_storage()
    key = f"{clip_folder(story.id)}/{passage.id}-{tag.hexdigest()[:12]}.m4a"
    data_key = source.data_key  # the story's key, unwrapped once for its playback copy
    clip = storage.file(key, data_key)
    if not clip.exists():
        made = storage.temp_path(".m4a")
        try:
            cut_clip(source, made, passage.start, passage.end)
            storage.put(made, key, data_key)
        finally:
            made.unlink(missing_ok=True)
    return clip, story.id


def clip_folder(story_id: int) -> str:
    return f"clips/story-{story_id}"
