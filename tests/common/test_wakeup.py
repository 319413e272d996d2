"""Waking a worker: a notification that comes while the worker is busy is not lost."""

from __future__ import annotations

import asyncio
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.db.notify import Wakeup


async def test_a_notification_while_the_worker_was_busy_wakes_its_next_wait_at_once() -> None:
    # The listening connection plays no part here: nudge() is what the listener's callback does.
    wakeup = Wakeup(cast("AsyncEngine", None), "channel", poll_interval_s=3600)
    wakeup.nudge()  # rows committed while the worker was draining the previous ones

    await asyncio.wait_for(wakeup.wait(), timeout=30)  # at once, not after an hour's poll

    # Taken: the next wait waits again, for the next notification.
    waiting = asyncio.create_task(wakeup.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    wakeup.nudge()
    await asyncio.wait_for(waiting, timeout=30)
