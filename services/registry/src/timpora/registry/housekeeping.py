"""Periodic clean-up: stored idempotent answers are kept only as long as a client may retry.

Each holds the foreigner's full snapshot, which is personal data: it must not outlive its purpose.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.registry.models import idempotency_keys

log = logging.getLogger(__name__)
INTERVAL_S = 600


async def purge_idempotency_keys(engine: AsyncEngine, retention_days: int) -> int:
    # The database's clock, the one that stamped created_at.
    cutoff = func.now() - timedelta(days=retention_days)
    async with engine.begin() as connection:
        result = await connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff))
    deleted = int(result.rowcount)
    if deleted:
        log.info("purged stored idempotent answers", extra={"count": deleted})
    return deleted


async def run(engine: AsyncEngine, retention_days: int) -> None:
    while True:
        await purge_idempotency_keys(engine, retention_days)
        await asyncio.sleep(INTERVAL_S)
