"""The home page: what this person can do next, by role."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user

from .. import signals
from ..accounts.auth import any_signed_in
from ..accounts.models import Role

bp = Blueprint("home", __name__, template_folder="templates")
FEEDBACK = 5  # "You said, we did" sheets a staff member's home page lists, latest first


@dataclass(frozen=True)
class NextStep:
    endpoint: str
    title: str
    text: str


# Each feature adds its steps here; steps whose page is not installed are left out.
NEXT_STEPS: dict[Role, list[NextStep]] = {
    Role.REPORTER: [
        NextStep("stories.new", "Add a story",
                 "Record a story on this phone, or upload a recording, with the storyteller's "
                 "consent."),
        NextStep("stories.index", "Stories",
                 "See the stories you gathered, check transcripts and fix names it got wrong."),
    ],
    Role.FACILITATOR: [
        NextStep("stories.index", "Stories", "Browse the stories gathered for your projects."),
        NextStep("themes.index", "Themes",
                 "See what the stories are saying, shape the themes and pin quotes."),
        NextStep("packs.index", "Workshop packs",
                 "Build a pack for a Conversations for Change workshop and record what was "
                 "agreed."),
        NextStep("library.index", "Story library",
                 "Read the stories approved for staff, as staff see them."),
        NextStep("evaluation.index", "Exports for evaluators",
                 "A theme run's codes and redacted transcripts for NVivo, MAXQDA, ATLAS.ti or "
                 "QualCoder, or as a spreadsheet."),
    ],
    Role.STAFF: [
        NextStep("library.index", "Story library",
                 "Read and listen to curated, anonymised stories from people on probation, "
                 "peer mentors and colleagues, or search them by what they are about."),
    ],
    Role.ADMIN: [
        NextStep("admin.users", "People and roles",
                 "Create accounts, change roles, disable accounts and reset passwords."),
        NextStep("admin.sites", "Sites", "The offices and projects where stories are gathered."),
        NextStep("admin.audit_log", "Audit log", "See who did what, and when."),
        NextStep("stories.index", "Stories", "Oversee the stories held and their consent."),
        NextStep("evaluation.index", "Exports for evaluators",
                 "A theme run's codes and redacted transcripts for evaluators' tools."),
    ],
}


@bp.route("/")
@any_signed_in
def index():
    steps = [
        {"url": url_for(step.endpoint), "title": step.title, "text": step.text}
        for step in NEXT_STEPS.get(current_user.role, [])
        if step.endpoint in current_app.view_functions
    ]
    # Staff come to find stories: the library's search box is on their home page, and what
    # changed after the workshops ("You said, we did") below it.
    staff = current_user.role is Role.STAFF
    search = (url_for("library.index") if staff
              and "library.index" in current_app.view_functions else None)
    sheets = ([sheet for _receiver, found in signals.feedback_sheets.send(None, limit=FEEDBACK)
               for sheet in found or []][:FEEDBACK] if staff else [])
    return render_template("home/index.html", steps=steps, search=search, sheets=sheets,
                           staff=staff)


@bp.route("/healthz")
def health():
    """Report that the web process is up (for load balancers; no data)."""
    return {"status": "ok"}


@bp.app_context_processor
def navigation():
    """Give templates `nav_items()`: the main menu for the signed-in user's role."""

    def nav_items() -> list[dict]:
        if not current_user.is_authenticated:
            return []
        current = request.endpoint or ""
        steps = [step for step in NEXT_STEPS.get(current_user.role, [])
                 if step.endpoint in current_app.view_functions]
        exact = any(step.endpoint == current for step in steps)
        return [
            {"url": url_for(step.endpoint), "title": step.title,
             # A page with no menu entry of its own highlights its section's list page.
             "current": step.endpoint == current or (
                 not exact and step.endpoint.endswith(".index")
                 and current.split(".")[0] == step.endpoint.split(".")[0])}
            for step in steps
        ]

    return {"nav_items": nav_items}
