"""Periodic clean-up of personal data that must not outlive its purpose: stored idempotent answers (each holds
a foreigner's full snapshot) only as long as a client may retry, and accommodations' reports of guests the
registry never came to know, or that were linked long ago, only as long as immigration may act on them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Table, delete, func
from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.registry.models import idempotency_keys, unmatched_stays

log = logging.getLogger(__name__)
INTERVAL_S = 600


async def _purge(engine: AsyncEngine, table: Table, stamped: str, retention_days: int, what: str) -> int:
    # The database's clock, the one that stamped the rows.
    cutoff = func.now() - timedelta(days=retention_days)
    async with engine.begin() as connection:
        result = await connection.execute(delete(table).where(table.c[stamped] < cutoff))
    deleted = int(result.rowcount)
    if deleted:
        log.info("purged %s", what, extra={"count": deleted})
    return deleted


async def purge_idempotency_keys(engine: AsyncEngine, retention_days: int) -> int:
    return await _purge(engine, idempotency_keys, "created_at", retention_days, "stored idempotent answers")


async def purge_stay_reports(engine: AsyncEngine, retention_days: int) -> int:
    """Reports older than ``retention_days`` (a linked one lives on as the person's stay)."""
    return await _purge(engine, unmatched_stays, "reported_at", retention_days, "old stay reports")


async def run(engine: AsyncEngine, retention_days: int, stay_report_retention_days: int) -> None:
    while True:
        await purge_idempotency_keys(engine, retention_days)
        await purge_stay_reports(engine, stay_report_retention_days)
        await asyncio.sleep(INTERVAL_S)
