"""Downloads for evaluators: a finished theme run as a REFI-QDA project or a CSV."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user
from sqlalchemy import select

from .. import policy
from ..extensions import db
from ..jobs.models import Job, JobStatus
from ..themes.models import ThemeRun
from ..web import allowed
from . import service

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation", template_folder="templates")


@bp.route("/")
@allowed(policy.Work.EVALUATE)
def index():
    runs = db.session.scalars(
        select(ThemeRun).join(Job, ThemeRun.job_id == Job.id)
        .where(Job.status == JobStatus.DONE).order_by(ThemeRun.number.desc())).all()
    return render_template("evaluation/index.html", runs=runs)


@bp.route("/runs/<int:run_id>/themes.<fmt>")
@allowed(policy.Work.EVALUATE)
def download(run_id: int, fmt: str):
    run = db.session.get(ThemeRun, run_id)
    if run is None or fmt not in service.FORMATS:
        abort(404)
    try:
        data, _found = service.export(run, current_user, fmt)
    except service.ExportError as exc:
        abort(409, description=str(exc))
    db.session.commit()
    response = Response(data, mimetype=service.FORMATS[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{service.filename(run, fmt)}"')
    return response
