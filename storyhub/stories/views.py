"""Story pages: add a story (upload or record), list stories, read one, play it."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from ..accounts.auth import role_required
from ..accounts.models import Role, Site
from ..extensions import db
from ..storage import StorageFull
from . import consent as consent_rules
from . import service
from .audio import AudioRejected, format_duration
from .consent import Scope
from .forms import LANGUAGES, StoryForm

logger = logging.getLogger(__name__)
bp = Blueprint("stories", __name__, url_prefix="/stories", template_folder="templates")
READERS = (Role.REPORTER, Role.FACILITATOR, Role.ADMIN)


def _wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "storyhub-recorder"


def _site_choices(form: StoryForm) -> None:
    sites: list[Site]
    if current_user.role is Role.REPORTER and not current_user.all_sites:
        sites = [current_user.site] if current_user.site else []
    else:
        sites = list(db.session.scalars(select(Site).order_by(Site.name)))
    form.site.choices = [(s.id, s.name) for s in sites] or [(0, "No site set")]
    if request.method == "GET" and current_user.site_id:
        form.site.data = current_user.site_id


def _uploaded_path(file: FileStorage | None) -> Path | None:
    if file is None or not file.filename and not file.content_length:
        return None
    name = getattr(file.stream, "name", None)
    if not isinstance(name, str):
        return None
    file.stream.flush()
    return Path(name)


def _refuse(form: StoryForm, message: str, status: int, link: str | None = None):
    if _wants_json():
        return jsonify({"error": message, "link": link}), status
    flash(message, "error")
    return render_template("stories/new.html", form=form, existing_link=link), status


@bp.route("/")
@role_required(*READERS)
def index():
    stories = db.session.scalars(service.visible_stories(current_user)).all()
    return render_template("stories/index.html", stories=stories,
                           format_duration=format_duration)


@bp.route("/new", methods=["GET", "POST"])
@role_required(*READERS)
def new():
    form = StoryForm()
    _site_choices(form)
    if request.method == "GET":
        return render_template("stories/new.html", form=form)
    if not form.validate_on_submit():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _refuse(form, message or "Check the form and try again.", 400)
    upload = _uploaded_path(form.audio.data)
    if upload is None:
        return _refuse(form, "Choose a recording to upload, or record one.", 400)
    story_in = service.NewStory(
        title=form.title.data, storyteller_role=form.storyteller_role.data,
        story_type=form.story_type.data, recorded_on=form.recorded_on.data,
        storyteller_code=form.storyteller_code.data or "", real_name=form.real_name.data or "",
        prompt=form.prompt.data or "", site_id=form.site.data or None,
        language=form.language.data, tags=(form.tags.data or "").split(","))
    terms = service.NewConsent(
        scopes=form.scopes(), method=form.consent_method.data,
        given_on=form.consent_given_on.data, spoken_at_seconds=form.spoken_at_seconds(),
        form_path=_uploaded_path(form.consent_form.data) if form.consent_method.data
        == "signed_form" else None,
        witnessed_by=form.witnessed_by.data or "", review_on=form.consent_review_on.data,
        store_real_name=form.store_real_name.data)
    try:
        story = service.create_story(story_in, terms, upload, current_user)
        db.session.commit()
    except service.DuplicateRecording as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 409, url_for("stories.show", story_id=exc.story_id))
    except (service.StoryError, AudioRejected) as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 422)
    except StorageFull as exc:
        db.session.rollback()
        return _refuse(form, exc.strerror or "The server's storage is full.", 507)
    except PermissionError as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 403)
    message = f"Story saved: “{story.title}” (storyteller {story.storyteller.code})."
    target = url_for("stories.show", story_id=story.id)
    if _wants_json():
        flash(message, "success")
        return jsonify({"redirect": target, "story_id": story.id}), 201
    flash(message, "success")
    return redirect(target)


def story_or_abort(story_id: int):
    """Return the story for the signed-in user, or answer 404 (no such story) or 403."""
    try:
        return service.get_story(story_id, current_user)
    except LookupError:
        abort(404)
    except PermissionError:
        abort(403)


@bp.route("/<int:story_id>")
@role_required(*READERS)
def show(story_id: int):
    story = story_or_abort(story_id)
    from ..transcripts.service import status_of

    playable = consent_rules.check(story, Scope.TRANSCRIBE_ANALYSE)
    status = status_of(story)
    return render_template("stories/show.html", story=story, Scope=Scope,
                           playback_refused=playable, format_duration=format_duration,
                           job_error=status["error"], needs_checking=status["needs_checking"],
                           language_names={c.value: c.label for c in LANGUAGES})


@bp.route("/<int:story_id>/audio")
@role_required(*READERS)
def audio(story_id: int):
    story = story_or_abort(story_id)
    try:
        path = service.playback_path(story, current_user)
    except consent_rules.ConsentRefused as exc:
        db.session.rollback()
        return jsonify({"error": str(exc)}), 403
    db.session.commit()  # the audit entry
    response = send_file(path, mimetype="audio/mp4", conditional=True,
                         download_name=f"story-{story.id}.m4a", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = f'inline; filename="story-{story.id}.m4a"'
    return response


@bp.route("/<int:story_id>/consent/withdraw", methods=["POST"])
@role_required(*READERS)
def withdraw_consent(story_id: int):
    story = story_or_abort(story_id)
    try:
        service.withdraw_consent(story, current_user)
        db.session.commit()
    except service.StoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash("Consent withdrawn. StoryHub will not transcribe, analyse, quote, play or show "
              "this story. Ask an admin to erase the recording if the storyteller wants that.",
              "success")
    return redirect(url_for("stories.show", story_id=story.id))
