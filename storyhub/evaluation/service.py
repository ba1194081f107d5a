"""The export verbs: who may export a run for evaluators, and the audit record of it."""

from __future__ import annotations

import io

from .. import audit, policy
from ..accounts.models import User
from ..policy import AccessDenied
from ..themes.models import RunStatus, ThemeRun
from . import corpus, exports

FORMATS = {"qdpx": "application/octet-stream", "csv": "text/csv"}


class ExportError(ValueError):
    """The run cannot be exported (yet); the message says why."""


def export(run: ThemeRun, actor: User, fmt: str) -> tuple[bytes, corpus.Corpus]:
    """Return `run` exported as `fmt` ("qdpx" or "csv") for `actor`, audited (caller commits).

    Only stories `actor` may analyse go in, redacted (storyhub/evaluation/corpus.py).
    """
    if not policy.may(actor, policy.Work.EVALUATE):
        raise AccessDenied("Only facilitators and admins export themes for evaluators.")
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}: qdpx or csv.")
    if run.status is not RunStatus.DONE:
        raise ExportError(f"Theme run {run.number} has not finished: export it when it has.")
    found = corpus.build(run, actor)
    if fmt == "qdpx":
        out = io.BytesIO()
        exports.write_qdpx(found, out, actor.display_name or actor.username)
        data = out.getvalue()
    else:
        data = exports.csv_text(found).encode("utf-8")
    audit.record("themes.export", actor.id, "theme_run", run.id,
                 detail=f"{fmt}: {len(found.sources)} stories, {len(found.themes)} themes, "
                        f"{len(found.segments)} passages")
    return data, found


def filename(run: ThemeRun, fmt: str) -> str:
    return f"storyhub-themes-run-{run.number}.{fmt}"
