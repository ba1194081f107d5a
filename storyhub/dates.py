"""Calendar dates as the people using StoryHub live them: in the service's time zone.

A reporter who records a story just after midnight on a British summer night records it
"today" in London, while a server kept on UTC still says yesterday, and would refuse the date
as in the future. So the dates people give and read (recorded on, consent given and reviewed,
the forms' defaults, retention's schedule) count from `today()` in the TIME_ZONE setting
(Europe/London unless set). Timestamps (created, audited, leases) stay in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import has_app_context

from .config import DEFAULT_TIME_ZONE, settings


def zone() -> ZoneInfo:
    """The service's time zone: the current app's TIME_ZONE, or the default outside one."""
    # ZoneInfo keeps the zones it has read: asking again reads no file.
    return ZoneInfo(settings().time_zone if has_app_context() else DEFAULT_TIME_ZONE)


def now() -> datetime:
    """The time now, aware and in UTC (the edge of the world that tests move)."""
    return datetime.now(UTC)


def today() -> date:
    """Today's date where the service is."""
    return now().astimezone(zone()).date()
