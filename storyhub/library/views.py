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
from ..extensions import db
from ..media.audio import format_duration
from ..security import number_arg
from ..stories.models import StorytellerRole, StoryType
from ..stories.service import playback_file
from ..web import allowed, send_audio, starts_listening, story_or_abort
from . import finding, publishing, reading, search, service
from .forms import CurationForm, FindForm
from .models import CurationState

bp = Blueprint("library", __name__, url_prefix="/library", template_folder="templates")
FEEDBACK_SHEETS = 10  # "You said, we did" sheets the library lists


def _find_form() -> tuple[FindForm, finding.Filters]:
    form = FindForm(request.args)
    found = finding.choices(current_user)
    form.theme.choices = [SelectChoice("", "Any theme")] + [
        SelectChoice(str(i), label) for i, label in found["themes"]]
    form.site.choices = [SelectChoice("", "Any site")] + [
        SelectChoice(str(i), name) for i, name in found["sites"]]
    form.tag.choices = [SelectChoice("", "Any tag")] + [SelectChoice(t, t) for t in found["tags"]]
    if not form.validate():
        # Ignore a filter that no longer applies (a theme from an older run) rather than fail.
        for name in form.errors:
            getattr(form, name).data = None
    filters = finding.Filters(
        theme=form.theme.data, role=StorytellerRole(form.role.data) if form.role.data else None,
        story_type=StoryType(form.type.data) if form.type.data else None, site=form.site.data,
        recorded_from=form.recorded_from.data, recorded_to=form.recorded_to.data,
        tag=form.tag.data or None)
    return form, filters


MAX_PAGE = 10**6


def _page_number() -> int:
    # Clamped: past the last page is an empty page, never an error.
    return min(max(number_arg("page", default=1), 1), MAX_PAGE)


def _results(form: FindForm, filters: finding.Filters) -> finding.Page:
    text = (form.q.data or "").strip()
    if not text:
        return finding.list_cards(current_user, filters, _page_number())
    if form.how.data == "words":
        return finding.search_text(current_user, text, filters, _page_number(),
                                   every=form.match.data != "any")
    return finding.search_meaning(current_user, text, filters,
                                  nearest=request.args.get("nearest") == "1")


def feedback_sheets(limit: int) -> list[dict]:
    """The "You said, we did" sheets of workshops that recorded actions (see signals)."""
    return [sheet for _receiver, found in signals.feedback_sheets.send(None, limit=limit)
            for sheet in found or []][:limit]


@bp.route("/")
@allowed(policy.Action.LIBRARY)
def index():
    form, filters = _find_form()
    results = _results(form, filters)
    args = {k: v for k, v in request.args.items() if k != "page"}
    text = (form.q.data or "").strip()
    words = search.parse_words(text) if text and form.how.data == "words" else None
    # How many stories the other choice (all the words, or any) would find, to offer it.
    other = (finding.count_text(current_user, text, filters, form.match.data == "any")
             if words is not None and len(words.parts) > 1 else None)
    return render_template("library/index.html", form=form, results=results, filters=filters,
                           args=args, other=other, words_label=_words_label(words, form),
                           format_duration=format_duration,
                           month=reading.recorded_month,
                           sheets=feedback_sheets(FEEDBACK_SHEETS),
                           publishes=policy.may(current_user, policy.Work.PUBLISH_THEMES))


def _words_label(words: search.WordSearch | None, form: FindForm) -> str:
    """What an exact-words search looked for, as its heading says it: "all the words"…"""
    if words is None:
        return ""
    if form.match.data == "any" and len(words.parts) > 1:
        return "any of the words"
    if len(words.parts) == 1:
        return "the word" if len(words.parts[0]) == 1 else "the phrase"
    return "all the words"


@bp.route("/stories.json")
@allowed(policy.Action.LIBRARY)
def index_json():
    form, filters = _find_form()
    results = _results(form, filters)
    return jsonify({"total": results.total, "page": results.page, "stories": [{
        "code": c.code, "title": c.title, "storyteller_role": c.role.value,
        "story_type": c.story_type.value, "site": c.site,
        "recorded": reading.recorded_month(c.recorded_on), "seconds": c.seconds,
        "summary": c.summary, "tags": c.tags, "themes": c.themes,
        "snippet": str(c.snippet) if c.snippet else None, "start": c.start,
        "url": url_for("library.show", code=c.code)} for c in results.cards]})


def _readable(code: str, action: policy.Action = policy.Action.LIBRARY):
    try:
        return reading.readable(current_user, code, action)
    except LookupError:
        abort(404)


@bp.route("/<code>")
@allowed(policy.Action.LIBRARY)
def show(code: str):
    story, entry = _readable(code)
    listen = policy.decide(current_user, story, policy.Action.LIBRARY_LISTEN, curated=True)
    card = finding.cards_of([story.id])[0]
    page = render_template(
        "library/show.html", story=story, entry=entry, card=card, listen=listen,
        lines=reading.transcript_lines(story), highlights=reading.highlights(entry),
        related=finding.related(current_user, story.id), format_duration=format_duration,
        month=reading.recorded_month)
    reading.read(current_user, story)
    db.session.commit()
    return page


@bp.route("/<code>/audio")
@allowed(policy.Action.LIBRARY_LISTEN)
def audio(code: str):
    story, entry = _readable(code, policy.Action.LIBRARY_LISTEN)
    try:
        stored = playback_file(story, current_user, policy.Action.LIBRARY_LISTEN, curated=True)
    except LookupError:
        abort(404)
    if starts_listening():
        reading.listened(current_user, story)
        db.session.commit()
    return send_audio(stored, f"{entry.code}.m4a")


# --- publishing a theme run (facilitators, from the run's page) -------------------------------

@bp.route("/themes/<int:run_id>/publish", methods=["POST"])
@allowed(policy.Work.PUBLISH_THEMES)
def publish_themes(run_id: int):
    """Show a finished run's themes to staff, by the names facilitators gave them."""
    target = url_for("themes.run", run_id=run_id)
    try:
        run = publishing.publish(run_id, current_user)
    except LookupError:
        abort(404)
    except publishing.PublishError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(target)
    count = len(publishing.theme_choices())
    db.session.commit()
    flash(f"Staff now see the {count} {'theme' if count == 1 else 'themes'} of run "
          f"{run.number} in the library, by the names they have now. Later changes reach "
          "staff when you publish again.", "success")
    return redirect(target)


# --- curation (facilitators, from the story page) ---------------------------------------------

def curation_form(story_id: int, entry) -> CurationForm:
    form = CurationForm(data={"summary": entry.summary if entry else "",
                              "highlights": entry.highlights if entry else []})
    form.highlights.choices = [
        SelectChoice(str(p.id), f"{format_duration(p.start)} – {finding.clip(p.text, 24)}")
        for p in service.passages_of(story_id)]
    return form


@signals.story_page_panels.connect
def curation_panel(story, actor=None, **_kwargs) -> Markup | None:
    """The story page's library section, for facilitators."""
    if not policy.may(actor, policy.Action.CURATE):
        return None
    entry = service.entry_of(story.id)
    can = policy.decide(actor, story, policy.Action.CURATE)
    return Markup(render_template(  # noqa: S704 - a rendered (escaping) template
        "library/_curation.html", story=story, entry=entry, can=can,
        stage=service.stage(story), form=curation_form(story.id, entry),
        States=CurationState))


@bp.route("/curate/<int:story_id>", methods=["POST"])
@allowed(policy.Action.CURATE)
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
