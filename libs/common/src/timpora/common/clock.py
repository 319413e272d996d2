"""The current time, injectable: services ask a :class:`Clock`, tests hand them one they control."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def local_date(clock: Clock, zone: ZoneInfo) -> date:
    """Today's date where ``zone`` is: in WIT it is already tomorrow while in WIB it is not."""
    return clock.now().astimezone(zone).date()
