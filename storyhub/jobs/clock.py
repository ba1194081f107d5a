"""The time that leases are measured by: the database server's, so hosts' clocks may differ.

Every worker compares and extends leases against one clock, the database's, inside the UPDATE
that needs it. Tests swap in a FakeClock (the edge of the world) to move time by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import DateTime, func, literal, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from ..extensions import db


class DatabaseClock:
    """SQL for "now" (plus an offset) on the database server, as naive UTC."""

    def now(self, offset_seconds: float = 0.0) -> ColumnElement[datetime]:
        if db.engine.dialect.name == "sqlite":
            # Microseconds, as SQLAlchemy stores DATETIME on SQLite, so text compares work.
            stamp = func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{offset_seconds:+.3f} seconds")
            return type_coerce(stamp.concat("000"), DateTime())
        utc = func.timezone("UTC", func.statement_timestamp())
        return type_coerce(utc + func.make_interval(0, 0, 0, 0, 0, 0, offset_seconds),
                           DateTime())


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime):
        self.time = start

    def advance(self, seconds: float) -> None:
        self.time += timedelta(seconds=seconds)

    def now(self, offset_seconds: float = 0.0) -> ColumnElement[datetime]:
        return literal(self.time + timedelta(seconds=offset_seconds), DateTime())


def clock() -> DatabaseClock | FakeClock:
    return current_app.extensions.get("job_clock") or DatabaseClock()
