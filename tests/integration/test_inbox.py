"""The inbox's claim on the real PostgreSQL: two transactions claiming the same events (two members of a consumer
group, for the moment a partition moves from one to the other) never deadlock; the second waits for the first and
is left nothing to apply."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.waiting import until
from timpora.common.db.engine import driver_connection, make_session_factory
from timpora.common.db.inbox import claim
from timpora.sharing.models import inbox


def _entry(event_id: str) -> dict[str, object]:
    return {"event_id": event_id, "event_type": "t", "topic": "t", "partition": 0, "offset": 0}


async def test_two_transactions_claiming_the_same_events_in_other_orders_do_not_deadlock(
    sharing_engine: AsyncEngine,
) -> None:
    sessions = make_session_factory(sharing_engine)
    consumer = f"test-{uuid.uuid4().hex[:8]}"
    first, second = sorted(str(uuid.uuid4()) for _ in range(2))
    try:
        async with sessions() as holder, holder.begin():
            # One batch has claimed the first event and goes on with its work, its transaction open...
            assert await claim(holder, inbox, consumer, [_entry(first)]) == {first}

            async def claimed_after() -> set[str]:
                async with sessions() as other, other.begin():
                    return await claim(other, inbox, consumer, [_entry(second), _entry(first)])

            # ... while another batch holding both events, listed the other way round, claims them and waits.
            overlapping = asyncio.create_task(claimed_after())
            async with sharing_engine.connect() as watcher:
                watching = await driver_connection(watcher)

                async def waits() -> bool:
                    if overlapping.done():
                        return True  # it did not wait: its result, or its error, is told below
                    count: int = await watching.fetchval(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = current_setting('application_name') AND wait_event_type = 'Lock'"
                    )
                    return count > 0

                await until(waits, what="the second claim waiting for the first")
            # The first batch then claims the second event too: had the waiting claim taken the second event's key
            # before waiting on the first's, each would wait for the other.
            assert await claim(holder, inbox, consumer, [_entry(second)]) == {second}
        assert await asyncio.wait_for(overlapping, timeout=60) == set()
    finally:
        async with sharing_engine.begin() as connection:
            await connection.execute(delete(inbox).where(inbox.c.consumer == consumer))
