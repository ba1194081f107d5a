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

from .. import audit, dates, policy, signals
from ..accounts.models import Role, Site
from ..config import settings
from ..extensions import db
from ..media.audio import AudioRejected, format_duration
from ..storage import StorageFull, get_storage
from ..web import allowed, send_audio, starts_listening, story_or_abort
from . import retention, service, subject_access, tasks  # noqa: F401  (tasks: job handlers)
from .consent import Scope
from .forms import LANGUAGES, ConsentChangeForm, StoryForm
from .state import state_of, states_of

logger = logging.getLogger(__name__)
bp = Blueprint("stories", __name__, url_prefix="/stories", template_folder="templates")


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


# The field a refusal from the service is about, by how its message starts: the form's error
# summary links to it and marks it. A message not here is shown in the summary alone.
FIELD_OF_REFUSAL = {
    "Give the story a short title": "title",
    "You entered the storyteller's real name": "real_name",
    "The date recorded cannot be": "recorded_on",
    "You can only add stories for your own site": "site",
    "Record the storyteller's consent": "consent_transcribe_analyse",
    "The date consent was given cannot be": "consent_given_on",
    "The consent review date": "consent_review_on",
    "Say where on the recording": "spoken_at",
    "The consent time is after the end": "spoken_at",
    "Upload a photo or scan of the signed consent form": "consent_form",
    "The consent form": "consent_form",
    service.UNKNOWN_CODE: "storyteller_code",
}


def _field_of(message: str) -> str | None:
    return next((name for start, name in FIELD_OF_REFUSAL.items()
                 if message.startswith(start)), None)


def _refuse(form: StoryForm, message: str, status: int, link: str | None = None,
            field: str | None = None):
    """Answer a story that was not stored: the recorder's script gets JSON, a plain post the
    form again, with every problem in the summary at its top, each linked to its field."""
    if status != 400:  # a refusal from the service or the recording, not the form's checks
        field = field or _field_of(message)
        if field is not None:
            form[field].errors = [*form[field].errors, message]
        else:
            form.form_errors.append(message)
    errors = [{"field": form[name].id if name in form else None, "message": error}
              for name, found in form.errors.items() for error in found]
    if _wants_json():
        return jsonify({"error": message, "link": link, "errors": errors}), status
    return render_template("stories/new.html", form=form, existing_link=link), status


@bp.route("/")
@allowed(policy.Action.SEE)
def index():
    stories = db.session.scalars(service.visible_stories(current_user)).all()
    return render_template("stories/index.html", stories=stories, states=states_of(stories),
                           format_duration=format_duration,
                           overdue=retention.overdue_stories(current_user.id),
                           erase_after=settings().retention_expired_days)


@bp.route("/new", methods=["GET", "POST"])
@allowed(policy.Work.GATHER)
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
        form.audio.errors = ["Choose a recording to upload, or record one."]
        return _refuse(form, form.audio.errors[0], 400)
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
        return _refuse(form, str(exc), 409, url_for("stories.show", story_id=exc.story_id),
                       field="audio")
    except AudioRejected as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 422, field="audio")
    except service.StoryError as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 422)
    except StorageFull as exc:
        db.session.rollback()
        return _refuse(form, exc.strerror or "The server's storage is full.", 507)
    except policy.AccessDenied as exc:
        db.session.rollback()
        return _refuse(form, str(exc), 403)
    message = f"Story saved: “{story.title}” (storyteller {story.storyteller.code})."
    target = url_for("stories.show", story_id=story.id)
    if _wants_json():
        flash(message, "success")
        return jsonify({"redirect": target, "story_id": story.id}), 201
    flash(message, "success")
    return redirect(target)


@bp.route("/<int:story_id>")
@allowed(policy.Action.SEE)
def show(story_id: int):
    story = story_or_abort(story_id)
    can = {action.value: policy.decide(current_user, story, action) for action in (
        policy.Action.PLAY, policy.Action.READ, policy.Action.EDIT, policy.Action.TRANSCRIBE,
        policy.Action.CONSENT, policy.Action.ERASE, policy.Action.SUBJECT_ACCESS)}
    panels = [panel for _receiver, panel in signals.story_page_panels.send(
        story, actor=current_user) if panel]
    audit.record("story.view", current_user.id, "story", story.id)
    db.session.commit()
    return render_template("stories/show.html", story=story, Scope=Scope, can=can,
                           panels=panels,
                           format_duration=format_duration, state=state_of(story),
                           language_names={c.value: c.label for c in LANGUAGES})


@bp.route("/<int:story_id>/title", methods=["POST"])
@allowed(policy.Action.SEE)
def rename(story_id: int):
    story = story_or_abort(story_id, policy.Action.EDIT)
    try:
        service.rename_story(story, request.form.get("title", ""), current_user)
        db.session.commit()
    except service.StoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash("Title changed.", "success")
    return redirect(url_for("stories.show", story_id=story.id))


@bp.route("/<int:story_id>/audio")
@allowed(policy.Action.PLAY)
def audio(story_id: int):
    story = story_or_abort(story_id)
    stored = service.playback_file(story, current_user)
    if starts_listening():
        audit.record("story.play", current_user.id, "story", story.id)
        db.session.commit()
    return send_audio(stored, f"story-{story.id}.m4a")


def _consent_page(story, form: ConsentChangeForm, status: int = 200):
    return render_template("stories/consent.html", story=story, form=form,
                           today=dates.today()), status


@bp.route("/<int:story_id>/consent", methods=["GET", "POST"])
@allowed(policy.Action.CONSENT)
def consent(story_id: int):
    """Change what the storyteller agrees to, or renew it by a new review date."""
    story = story_or_abort(story_id, policy.Action.CONSENT)
    if story.consent is None:
        abort(404)
    form = ConsentChangeForm()
    if request.method == "GET":
        for scope in Scope:
            form[f"consent_{scope.value}"].data = getattr(story.consent, scope.value)
        form.review_on.data = story.consent.review_on
        return _consent_page(story, form)
    if not form.validate_on_submit():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        flash(message or "Check the form and try again.", "error")
        return _consent_page(story, form, 400)
    change = service.ConsentChange(scopes=form.scopes(), confirmed_on=form.confirmed_on.data,
                                   how=form.how.data, review_on=form.review_on.data)
    try:
        removed = service.change_consent(story, change, current_user)
        db.session.commit()
    except service.StoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _consent_page(story, form, 422)
    if removed:
        flash("Consent changed. What the storyteller took back is no longer used, and "
              "anything made for it is being erased now.", "success")
    else:
        flash("Consent changed.", "success")
    return redirect(url_for("stories.show", story_id=story.id))


@bp.route("/<int:story_id>/consent/withdraw", methods=["POST"])
@allowed(policy.Action.CONSENT)
def withdraw_consent(story_id: int):
    story = story_or_abort(story_id)
    try:
        service.withdraw_consent(story, current_user)
        db.session.commit()
    except service.StoryError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("stories.show", story_id=story.id))
    flash("Consent withdrawn. Nothing will use this story again, and its recording, transcript "
          "and everything made from them are being erased now.", "success")
    return redirect(url_for("stories.index"))


@bp.route("/<int:story_id>/erase", methods=["POST"])
@allowed(policy.Action.ERASE)
def erase(story_id: int):
    story = story_or_abort(story_id, policy.Action.ERASE)
    service.erase_on_request(story, current_user)
    db.session.commit()
    flash(f"Story {story.id} is being erased: its recording, consent form, transcript and "
          "everything made from them. Only a record that it was erased stays in the audit log.",
          "success")
    return redirect(url_for("stories.index"))


@bp.route("/<int:story_id>/subject-access.zip")
@allowed(policy.Action.SUBJECT_ACCESS)
def subject_access_export(story_id: int):
    """Everything held about this story's storyteller (all their stories), as a ZIP."""
    story = story_or_abort(story_id, policy.Action.SUBJECT_ACCESS)
    storage = get_storage()
    out = storage.temp_path(".zip")
    try:
        subject_access.build(story.storyteller, current_user, out)
        db.session.commit()
        handle = out.open("rb")
    finally:
        out.unlink(missing_ok=True)  # the open handle keeps the data until it is sent
    response = send_file(handle, mimetype="application/zip", as_attachment=True,
                         download_name=f"storyhub-{story.storyteller.code}.zip", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
