"""`storyhub import`: bring in stories gathered offline, each with its consent row."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from ..accounts.models import Site, User
from ..accounts.service import get_user_by_username
from ..database import with_schema
from ..extensions import db
from ..media.audio import AudioRejected
from ..policy import AccessDenied
from ..storage import StorageFull
from . import service
from .consent import Scope
from .forms import StoryForm
from .models import Story, StoryStatus
from .state import states_of

logger = logging.getLogger(__name__)
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm"}
COLUMNS = ["file", "title", "storyteller_role", "story_type", "recorded_on", "consent_given_on",
           "consent_method"]
TRUE = {"1", "y", "yes", "true", "x"}


@dataclass
class Outcome:
    file: str
    ok: bool
    message: str
    story_id: int | None = None


def _date(value: str, column: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise service.StoryError(f"{column} must be a date like 2026-03-31.") from exc


# Fields checked by the web form's own validators, so an import accepts what the form accepts.
FORM_CHECKED = ("title", "storyteller_role", "story_type", "storyteller_code", "real_name",
                "prompt", "language", "tags", "witnessed_by")


def inside(folder: Path, name: str, what: str) -> Path:
    """Return `name` as a file in `folder`; refuse paths out of it, symlinks and absent files."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise service.StoryError(f"The {what} must be a file inside the import folder, named "
                                 "relative to it.")
    candidate = folder / name
    step = folder
    for part in Path(name).parts:
        step = step / part
        if step.is_symlink():
            raise service.StoryError(f"The {what} is a link to another file: copy the file "
                                     "itself into the import folder.")
    path = candidate.resolve()
    if folder.resolve() not in path.parents:
        raise service.StoryError(f"The {what} must be a file inside the import folder.")
    if not path.is_file():
        raise service.StoryError(f"The {what} “{name}” is not in the import folder.")
    return path


def _check_fields(row: dict[str, str]) -> None:
    """Apply the web form's checks to the row's story fields; raise StoryError saying which."""
    from werkzeug.datastructures import MultiDict

    values = {name: (row.get(name) or "").strip() for name in FORM_CHECKED}
    values["language"] = values["language"] or "en"
    form = StoryForm(formdata=MultiDict(values), meta={"csrf": False})
    problems = []
    for name in FORM_CHECKED:
        field = form[name]
        if not field.validate(form):
            problems.append(f"{name}: {' '.join(field.errors)}")
    if problems:
        raise service.StoryError("; ".join(problems))


def _row_to_inputs(row: dict[str, str], folder: Path):
    missing = [c for c in COLUMNS if not (row.get(c) or "").strip()]
    if missing:
        raise service.StoryError("Missing " + ", ".join(missing) + ".")
    _check_fields(row)
    path = inside(folder, row["file"].strip(), "recording")
    form = (row.get("consent_form") or "").strip()
    form_path = inside(folder, form, "consent form") if form else None
    spoken = (row.get("spoken_at_seconds") or "").strip()
    try:
        spoken_at = float(spoken) if spoken else None
    except ValueError as exc:
        raise service.StoryError("spoken_at_seconds must be a number of seconds, e.g. 5 "
                                 "or 12.5.") from exc
    site_id = None
    if (row.get("site") or "").strip():
        site = db.session.query(Site).filter(Site.name == row["site"].strip()).one_or_none()
        if site is None:
            raise service.StoryError(f"No site called “{row['site'].strip()}”: add it first.")
        site_id = site.id
    story = service.NewStory(
        title=row["title"], storyteller_role=row["storyteller_role"].strip(),
        story_type=row["story_type"].strip(), recorded_on=_date(row["recorded_on"], "recorded_on"),
        storyteller_code=row.get("storyteller_code") or "", real_name=row.get("real_name") or "",
        prompt=row.get("prompt") or "", site_id=site_id, language=row.get("language") or "en",
        tags=(row.get("tags") or "").split(","))
    terms = service.NewConsent(
        scopes={s for s in Scope if (row.get(f"consent_{s.value}") or "").strip().lower() in TRUE},
        method=row["consent_method"].strip(),
        given_on=_date(row["consent_given_on"], "consent_given_on"),
        spoken_at_seconds=spoken_at,
        form_path=form_path,
        witnessed_by=row.get("witnessed_by") or "",
        review_on=_date(row["consent_review_on"], "consent_review_on")
        if (row.get("consent_review_on") or "").strip() else None,
        store_real_name=(row.get("store_real_name") or "").strip().lower() in TRUE)
    return story, terms, path


def import_folder(folder: Path, consents_csv: Path, actor: User,
                  progress=None) -> list[Outcome]:
    """Import every row of `consents_csv`; each file stands or falls on its own."""
    with consents_csv.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    listed = {(r.get("file") or "").strip() for r in rows}
    outcomes: list[Outcome] = []
    for row in rows:
        name = (row.get("file") or "").strip() or "(no file named)"
        try:
            story_in, terms, path = _row_to_inputs(row, folder)
            story = service.create_story(story_in, terms, path, actor)
            db.session.commit()
            outcomes.append(Outcome(name, True, f"stored as story {story.id} "
                                                f"({story.storyteller.code})", story.id))
        except service.DuplicateRecording as exc:
            db.session.rollback()
            outcomes.append(Outcome(name, False, f"{exc} (story {exc.story_id})"))
        except (service.StoryError, AudioRejected, AccessDenied, ValueError) as exc:
            db.session.rollback()
            outcomes.append(Outcome(name, False, str(exc)))
        except StorageFull as exc:
            db.session.rollback()
            outcomes.append(Outcome(name, False, exc.strerror or "storage full"))
        if progress is not None:
            progress(1)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.name not in listed:
            outcomes.append(Outcome(path.name, False,
                                    "Not imported: no consent row for this file in the CSV."))
    return outcomes


@click.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--consents", "consents_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with one row per recording: its story details and consent.")
@click.option("--as", "username", required=True, help="The reporter the stories belong to.")
@click.option("--wait", is_flag=True,
              help="Then show transcription progress until every story is done.")
@with_schema
def import_command(folder: Path, consents_csv: Path, username: str, wait: bool) -> None:
    """Import recordings gathered offline, with their consent."""
    actor = get_user_by_username(username)
    if actor is None or not actor.enabled:
        raise click.ClickException(f"No active account called “{username}”.")
    with consents_csv.open(newline="", encoding="utf-8-sig") as fh:
        total = sum(1 for _ in csv.DictReader(fh))
    with click.progressbar(length=total, label="Importing stories",
                           show_pos=True, show_eta=True) as bar:
        outcomes = import_folder(folder, consents_csv, actor, progress=bar.update)
    width = max((len(o.file) for o in outcomes), default=4)
    for o in outcomes:
        mark = click.style("OK  ", fg="green") if o.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {o.file:<{width}}  {o.message}")
    stored = sum(o.ok for o in outcomes)
    click.echo(f"{stored} of {len(outcomes)} recordings stored.")
    if wait:
        _wait_for_transcripts([o.story_id for o in outcomes if o.story_id is not None])
    if stored < len(outcomes):
        raise SystemExit(1)


def _wait_for_transcripts(story_ids: list[int]) -> None:
    """Show one progress bar for the transcription of `story_ids` until each ends."""
    import time

    from sqlalchemy import select

    finished = {StoryStatus.TRANSCRIBED, StoryStatus.REVIEWED, StoryStatus.FAILED,
                StoryStatus.UPLOADED}
    click.echo("Transcribing (a worker must be running: `storyhub run` or a celery worker)…")
    with click.progressbar(length=100 * len(story_ids), label="Transcribing",
                           show_eta=True) as bar:
        shown = 0
        while True:
            db.session.expire_all()
            stories = db.session.scalars(select(Story).where(Story.id.in_(story_ids))).all()
            found = states_of(list(stories))
            states = [found[sid] for sid in story_ids]
            total = int(sum(100 if s.status in finished else s.progress for s in states))
            bar.update(max(total - shown, 0))
            shown = max(shown, total)
            db.session.rollback()
            if all(s.status in finished for s in states):
                break
            time.sleep(1)
    failed = [sid for sid, s in zip(story_ids, states, strict=True)
              if s.status is StoryStatus.FAILED]
    click.echo(f"{len(story_ids) - len(failed)} transcribed, {len(failed)} failed"
               + (f" (stories {', '.join(map(str, failed))})" if failed else "") + ".")
