"""Waking a worker when a table it drains gets rows: PostgreSQL LISTEN/NOTIFY with polling as the fallback.

NOTIFY is transactional (a listener hears of rows only once they commit) but best-effort: a
notification sent while the listening connection was being replaced is gone. Workers therefore
also wake every ``poll_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.db.engine import driver_connection


class Wakeup:
    def __init__(self, engine: AsyncEngine, channel: str, *, poll_interval_s: float) -> None:
        self._engine = engine
        self._channel = channel
        self._poll_interval_s = poll_interval_s
        self._event = asyncio.Event()

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Holds the listening connection for as long as the worker runs."""
        async with self._engine.connect() as connection:
            driver = await driver_connection(connection)
            await driver.add_listener(self._channel, lambda *_: self._event.set())
            yield

    def nudge(self) -> None:
        """Wakes the worker from this process (after a change no trigger reports)."""
        self._event.set()

    async def wait(self) -> None:
        """Returns at once if notified since the last wait returned (rows committed while the worker was busy
        are drained now, not at the next commit or poll), else on the next notification or after the poll
        interval."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=self._poll_interval_s)
        self._event.clear()
