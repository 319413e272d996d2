"""Waiting on the sharing service's check of the disclosure log (timpora.sharing.verification)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.waiting import until
from timpora.sharing.models import disclosure_walk


async def whole_walk_made(engine: AsyncEngine) -> None:
    """Returns once a whole walk of the disclosure log made within the last interval (an hour) is kept: a sharing
    service's worker makes one at start when there is none, or the last is older, and until then the record's page
    says it is still to come (or warns it is overdue)."""

    async def made() -> bool:
        recent = disclosure_walk.c.walked_at > func.clock_timestamp() - timedelta(hours=1)
        async with engine.connect() as connection:
            return bool(await connection.scalar(select(func.count()).where(recent)))

    await until(made, what="the first whole walk of the disclosure log")
