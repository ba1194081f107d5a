"""Library pages: the staff reading room (cards, filters, search, story, audio) and curation."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from .. import policy, signals
from ..accounts.auth import role_required
from ..accounts.models import Role
from ..extensions import db
from ..stories.audio import format_duration
from ..stories.models import StorytellerRole, StoryType
from ..stories.service import playback_file
from ..stories.views import send_audio, starts_listening, story_or_abort
from . import service
from .forms import CurationForm, FindForm
from .models import CurationState

bp = Blueprint("library", __name__, url_prefix="/library", template_folder="templates")
READERS = (Role.STAFF, Role.FACILITATOR, Role.ADMIN)


def _find_form() -> tuple[FindForm, service.Filters]:
    form = FindForm(request.args)
    found = service.choices(current_user)
    form.theme.choices = [SelectChoice("", "Any theme")] + [
        SelectChoice(str(i), label) for i, label in found["themes"]]
    form.site.choices = [SelectChoice("", "Any site")] + [
        SelectChoice(str(i), name) for i, name in found["sites"]]
    form.tag.choices = [SelectChoice("", "Any tag")] + [SelectChoice(t, t) for t in found["tags"]]
    if not form.validate():
        # Ignore a filter that no longer applies (a theme from an older run) rather than fail.
        for name in form.errors:
            getattr(form, name).data = None
    filters = service.Filters(
        theme=form.theme.data, role=StorytellerRole(form.role.data) if form.role.data else None,
        story_type=StoryType(form.type.data) if form.type.data else None, site=form.site.data,
        recorded_from=form.recorded_from.data, recorded_to=form.recorded_to.data,
        tag=form.tag.data or None)
    return form, filters


def _page_number() -> int:
    return request.args.get("page", 1, type=int) or 1


def _results(form: FindForm, filters: service.Filters) -> service.Page:
    text = (form.q.data or "").strip()
    if not text:
        return service.list_cards(current_user, filters, _page_number())
    if form.how.data == "words":
        return service.search_text(current_user, text, filters, _page_number())
    return service.search_meaning(current_user, text, filters)


@bp.route("/")
@role_required(*READERS)
def index():
    form, filters = _find_form()
    results = _results(form, filters)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("library/index.html", form=form, results=results, filters=filters,
                           args=args, format_duration=format_duration,
                           month=service.recorded_month)


@bp.route("/stories.json")
@role_required(*READERS)
def index_json():
    form, filters = _find_form()
    results = _results(form, filters)
    return jsonify({"total": results.total, "page": results.page, "stories": [{
        "code": c.code, "title": c.title, "storyteller_role": c.role.value,
        "story_type": c.story_type.value, "site": c.site,
        "recorded": service.recorded_month(c.recorded_on), "seconds": c.seconds,
        "summary": c.summary, "tags": c.tags, "themes": c.themes,
        "snippet": str(c.snippet) if c.snippet else None, "start": c.start,
        "url": url_for("library.show", code=c.code)} for c in results.cards]})


def _readable(code: str, action: policy.Action = policy.Action.LIBRARY):
    try:
        return service.readable(current_user, code, action)
    except LookupError:
        abort(404)


@bp.route("/<code>")
@role_required(*READERS)
def show(code: str):
    story, entry = _readable(code)
    listen = policy.decide(current_user, story, policy.Action.LIBRARY_LISTEN, curated=True)
    card = service.cards_of([story.id])[0]
    page = render_template(
        "library/show.html", story=story, entry=entry, card=card, listen=listen,
        lines=service.reading(story), highlights=service.highlights(entry),
        related=service.related(current_user, story.id), format_duration=format_duration,
        month=service.recorded_month)
    service.read(current_user, story)
    db.session.commit()
    return page


@bp.route("/<code>/audio")
@role_required(*READERS)
def audio(code: str):
    story, entry = _readable(code, policy.Action.LIBRARY_LISTEN)
    try:
        stored = playback_file(story, current_user, policy.Action.LIBRARY_LISTEN, curated=True)
    except LookupError:
        abort(404)
    if starts_listening():
        service.listened(current_user, story)
        db.session.commit()
    return send_audio(stored, f"{entry.code}.m4a")


# --- curation (facilitators, from the story page) ---------------------------------------------

def curation_form(story_id: int, entry) -> CurationForm:
    form = CurationForm(data={"summary": entry.summary if entry else "",
                              "highlights": entry.highlights if entry else []})
    form.highlights.choices = [
        SelectChoice(str(p.id), f"{format_duration(p.start)} – {service.clip(p.text, 24)}")
        for p in service.passages_of(story_id)]
    return form


@signals.story_page_panels.connect
def curation_panel(story, actor=None, **_kwargs) -> Markup | None:
    """The story page's library section, for facilitators."""
    if actor is None or actor.role is not Role.FACILITATOR:
        return None
    entry = service.entry_of(story.id)
    can = policy.decide(actor, story, policy.Action.CURATE)
    return Markup(render_template(  # noqa: S704 - a rendered (escaping) template
        "library/_curation.html", story=story, entry=entry, can=can,
        stage=service.stage(story), form=curation_form(story.id, entry),
        States=CurationState))


@bp.route("/curate/<int:story_id>", methods=["POST"])
@role_required(Role.FACILITATOR)
def curate(story_id: int):
    story = story_or_abort(story_id)
    entry = service.entry_of(story.id)
    form = curation_form(story.id, entry)
    step = request.form.get("step", "save")
    target = url_for("stories.show", story_id=story.id) + "#library"
    try:
        if step == "retire":
            service.retire(story, current_user)
            message = "The story is no longer in the staff library."
        else:
            if not form.validate_on_submit():
                flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
                return redirect(target)
            service.save_curation(story, current_user, form.summary.data or "",
                                  form.highlights.data or [])
            db.session.commit()  # the summary is kept even if approval is refused
            message = "Saved."
            if step == "approve":
                service.approve(story, current_user)
                message = "The story is in the staff library now."
    except service.LibraryError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(target)
    db.session.commit()
    flash(message, "success")
    return redirect(target)
