"""The base every feature's job handler extends: what the runner calls, and its defaults.

A feature puts its handlers in its `tasks.py`, one subclass a kind of job, and registers an
instance with `runner.register` (the feature's views import `tasks`, so every process that
builds the app, the worker included, has them). The runner calls, for each job:

- `prepare(job)`: read what the work needs in a short transaction, and return it (the
  handler's own frozen dataclass, holding ids and plain values, never ORM objects); raise
  `runner.JobRefused` to fail the job with a message, `runner.NothingToDo` to finish it unrun;
- `work(prepared, report)`: the long part, with no transaction open, calling `report(percent)`
  now and then (that is where a lost lease or a stopping worker stops it);
- `publish(job, prepared, result)`: write the results, in the transaction that marks the job
  done, after the runner checked that this worker still holds it;
- `discard(prepared)`: remove what `work` made aside, when its results are not published;
- `after_commit(prepared)`: tidy up once the results are committed (best effort).

Only `kind`, `failure_message`, `prepare` and `publish` must be given: a handler whose work is
short does it all in `publish`, in the job's own transaction, and makes nothing aside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from .models import Job

Report = Callable[[float], None]
Prepared = TypeVar("Prepared")
Result = TypeVar("Result")


class JobHandler(Generic[Prepared, Result]):
    """How the runner does one kind of job; subclasses fill in the steps they need."""

    #: The job kind's name, as stored in `jobs.kind` (never change one: rows keep it).
    kind: ClassVar[str]
    #: The Celery queue its jobs are sent to.
    queue: ClassVar[str] = "default"
    #: What the person who started the job reads if it fails for a reason they cannot fix.
    failure_message: ClassVar[str]

    def prepare(self, job: Job) -> Prepared:
        raise NotImplementedError

    def work(self, prepared: Prepared, report: Report) -> Result:
        """Nothing long by default: the job is done in `publish`, in its own transaction."""
        return None  # type: ignore[return-value]

    def publish(self, job: Job, prepared: Prepared, result: Result) -> None:
        raise NotImplementedError

    def discard(self, prepared: Prepared) -> None:
        """Nothing is made aside by default."""

    def after_commit(self, prepared: Prepared) -> None:
        """Nothing to tidy by default."""


AnyHandler = JobHandler[Any, Any]
