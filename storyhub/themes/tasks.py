"""The theme run job: split the chosen stories into passages, embed them, fit the themes.

A run is prepared in a short transaction (consent checked again: it may have been withdrawn
while the run waited), fitted with none open, and stored in the transaction that finishes the
job, with its model sealed under a key of its own (see service.MODEL_KEY_CONTEXT).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select

from .. import bundled_models, keys, policy, sealed
from ..config import settings
from ..database import refresh_statistics, utcnow
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.handler import JobHandler
from ..jobs.models import Job
from ..storage import get_storage
from ..stories.models import Consent, Story
from ..transcripts.models import Transcript
from . import modeling
from .facilitator_edits import carry_over
from .models import Passage, Theme, ThemePassage, ThemeRun
from .passages import SHORT_TURN_WORDS, sentences
from .service import (
    KIND,
    MODEL_KEY_CONTEXT,
    embed_missing,
    embedding_model_id,
    model_folder_key,
    passages_for,
)
from .story_changes import withdraw_story

logger = logging.getLogger(__name__)


def _why_no_passage(transcript: Transcript) -> str:
    """Say, in a sentence, why a reviewed transcript gave no passage to theme."""
    words = sum(len(s.words) for s in sentences(transcript))
    if not words:
        return "Its transcript has no words."
    return (f"Its transcript has only short replies or fillers ({words} words, no turn of "
            f"{SHORT_TURN_WORDS} words or more).")


@dataclass(frozen=True)
class RunInputs:
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
    """What the long part found: new embeddings (by passage index), the themes, and timing."""

    embeddings_added: dict[int, bytes]
    result: modeling.ThemeResult
    embed_seconds: float


class ThemeRunHandler(JobHandler[RunInputs, Analysis]):
    """How the job runner finds the themes of a run (queue `analysis`)."""

    kind = KIND
    queue = "analysis"
    failure_message = ("Finding themes failed on the server. Press Retry; if it fails again, "
                       "tell your StoryHub admin.")

    def prepare(self, job: Job) -> RunInputs:
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
        cfg = settings()
        try:  # a wrong model file stops the run here, with what to do, and is not retried
            modeling.check_embedder(cfg.theme_embedding_model)
        except bundled_models.ModelError as exc:
            raise jobs.JobRefused(f"Finding themes cannot start: {exc} Tell your StoryHub "
                                  "admin.") from None
        params = modeling.params_for(
            len(passages), [modeling.SeedTheme(**s) for s in run.seeds],
            random_state=cfg.theme_random_state,
            fit_sample=cfg.theme_fit_sample,
            seed_min_similarity=cfg.theme_seed_min_similarity)
        return RunInputs(run.id, [p.id for p in passages], [p.text for p in passages],
                         [p.story_id for p in passages],
                         [p.embedding if p.embedding_model == model_id else None
                          for p in passages],
                         used, refused, params, cfg.theme_embedding_model,
                         get_storage().temp_folder(), started, no_passage)

    def work(self, prepared: RunInputs, report: jobs.Report) -> Analysis:
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

    def publish(self, job: Job, prepared: RunInputs, analysis: Analysis) -> None:
        run = db.session.get(ThemeRun, prepared.run_id)
        assert run is not None  # noqa: S101  (it has our job)
        model_id = embedding_model_id()
        for index, vector in analysis.embeddings_added.items():
            passage = db.session.get(Passage, prepared.passage_ids[index])
            if passage is not None:
                passage.embedding, passage.embedding_model = vector, model_id
        _store(run, prepared, analysis)
        run.finished_at = utcnow()
        _let_go_of_withdrawn(run, prepared.used)
        logger.info("Theme run %s done: %s", run.number, run.results)

    def discard(self, prepared: RunInputs) -> None:
        shutil.rmtree(prepared.model_folder, ignore_errors=True)


def _let_go_of_withdrawn(run: ThemeRun, used: list[int]) -> None:
    """Take out the words of stories withdrawn while the run was working (and its model).

    Their withdrawal let go of the runs stored then; this one was not stored yet.
    """
    for story_id in db.session.scalars(select(Consent.story_id).where(
            Consent.story_id.in_(used), (Consent.withdrawn_at.is_not(None))
            | Consent.transcribe_analyse.is_(False))):
        withdraw_story(story_id)


def _store(run: ThemeRun, prepared: RunInputs, analysis: Analysis) -> None:
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
    _keep_model(run, prepared.model_folder)
    if run.previous_run_id:
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




def _keep_model(run: ThemeRun, folder: Path) -> None:
    """Seal the model saved in `folder` (then removed) and keep it as the run's."""
    storage = get_storage()
    key = model_folder_key(run)
    data_key = sealed.new_data_key()
    run.model_wrapped_key = sealed.wrap_key(keys.masters(), data_key,
                                            MODEL_KEY_CONTEXT.format(run.id))
    sealed_folder = storage.temp_folder()
    try:
        modeling.seal_model(folder, sealed_folder, data_key, key)
        storage.put_folder(sealed_folder, key)
    finally:
        shutil.rmtree(sealed_folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    run.model_key = key


jobs.register(ThemeRunHandler())
