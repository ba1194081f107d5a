"""The stories feature's background jobs: erasing a story, and the daily retention sweep.

Both do their work in `publish`, in the transaction that finishes the job (erasure.py and
retention.py say what each does and why).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..database import scrub
from ..extensions import db
from ..jobs import runner as jobs
from ..jobs.handler import JobHandler
from ..jobs.models import Job
from . import erasure, retention
from .models import Story


@dataclass(frozen=True)
class ErasureOrder:
    """Which story to erase, for which scopes (None: whole), why and at whose request."""

    story_id: int
    scopes: list[str] | None
    reason: str
    actor_id: int | None


class ErasureHandler(JobHandler[ErasureOrder, None]):
    """How the job runner erases a story (queue `default`)."""

    kind = erasure.KIND
    failure_message = ("Erasing this story failed on the server. Tell your StoryHub admin: "
                       "the story stays withdrawn and unused until it is erased.")

    def prepare(self, job: Job) -> ErasureOrder:
        if db.session.get(Story, job.target_id) is None:
            raise jobs.NothingToDo()
        params = job.params or {}
        return ErasureOrder(int(job.target_id or 0), params.get("scopes"),
                            params.get("reason", "withdrawn"), params.get("actor_id"))

    def publish(self, job: Job, prepared: ErasureOrder, result: None) -> None:
        story = db.session.get(Story, prepared.story_id)
        if story is not None:
            erasure.erase_now(story, prepared.scopes, prepared.actor_id, prepared.reason)

    def after_commit(self, prepared: ErasureOrder) -> None:
        """Leave no copy of the erased rows in the database's files."""
        scrub()


class RetentionHandler(JobHandler[str, None]):
    """How the job runner applies the retention schedules (queue `default`)."""

    kind = retention.KIND
    failure_message = "Applying the retention schedule failed; it is tried again tomorrow."

    def prepare(self, job: Job) -> str:
        return retention.today().isoformat()

    def publish(self, job: Job, prepared: str, result: None) -> None:
        retention.sweep()


jobs.register(ErasureHandler())
jobs.register(RetentionHandler())
jobs.register_periodic(retention.KIND, retention.daily_key)
