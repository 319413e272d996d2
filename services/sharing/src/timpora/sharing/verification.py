"""The disclosure record's check, kept: a look at the record (the controller's page, ``GET /v1/disclosures``) goes
on from where the last check ended, and the whole chain is walked again from its first entry, in the background,
every ``disclosure_walk_s``.

Why: walking the chain costs some 40 µs an entry, and the log keeps every disclosure ever made (millions in a
year). A look that walked it all grew with the log until it outlasted the portal's wait and the data-protection
officer's page showed an error instead of the record. Going on from the last check reads only what was added
since; what that cannot see (an entry checked before and edited since, its successors left as they were) the whole
walk sees, and the page says when that last ran.

Where the last check ended is kept in ``disclosure_walk`` (one row), so a restarted or second instance goes on from
it too. Whoever could forge that row can append to the log but not edit it (timpora.common.disclosures): the worst
a forged row does is say "intact" until the next whole walk, which does not read it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common import disclosures
from timpora.common.clock import Clock
from timpora.sharing.models import disclosure_walk

log = logging.getLogger(__name__)

#: Checks take turns, across instances: each goes on from the one before, none walks the same entries twice.
_TURN = text("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-walk'))")
_KEPT = select(disclosure_walk).where(disclosure_walk.c.id == 1)


@dataclass(frozen=True, slots=True)
class Check:
    verified: disclosures.Verified
    #: When the whole chain was last walked from its first entry.
    walked_at: datetime


async def current(engine: AsyncEngine, clock: Clock) -> Check:
    """The log checked up to its newest entry, going on from the last check (the first one ever walks it all)."""
    async with engine.begin() as connection:
        await connection.execute(_TURN)
        kept = (await connection.execute(_KEPT)).first()
        if kept is None:
            walked_at = clock.now()
            verified = await disclosures.verify(connection)
        else:
            walked_at = kept.walked_at
            verified = await disclosures.verify(connection, after=_verified(kept))
        await _keep(connection, verified, walked_at, clock)
    return Check(verified, walked_at)


async def walk_whole(engine: AsyncEngine, clock: Clock) -> Check:
    """Walks the whole chain from its first entry, and keeps where it ended (a later look goes on from there)."""
    started = clock.now()
    # Outside the turn: a look at the record meanwhile goes on from the last check and need not wait for this.
    async with engine.connect() as connection:
        verified = await disclosures.verify(connection)
    async with engine.begin() as connection:
        await connection.execute(_TURN)
        await _keep(connection, verified, started, clock)
    if verified.broken is not None:
        log.error("the disclosure log's hash chain does not hold: %s", verified.broken)
    return Check(verified, started)


async def walk_every(engine: AsyncEngine, clock: Clock, interval_s: float) -> None:
    """Walks the whole chain whenever the last whole walk is ``interval_s`` old (at once if none was ever made),
    until cancelled; a failed walk is tried again after ``interval_s``."""
    while True:
        async with engine.connect() as connection:
            kept = (await connection.execute(_KEPT)).first()
        due_in = 0.0 if kept is None else interval_s - (clock.now() - kept.walked_at).total_seconds()
        if due_in > 0:
            await asyncio.sleep(min(due_in, interval_s))
            continue
        try:
            await walk_whole(engine, clock)
        except Exception:
            # The next interval tries again; the log says why.
            log.warning("walking the disclosure log failed", exc_info=True)
            await asyncio.sleep(interval_s)


def _verified(kept: Any) -> disclosures.Verified:  # noqa: ANN401 - a row of disclosure_walk
    breaks = tuple(kept.breaks)
    return disclosures.Verified(
        checked=kept.checked,
        broken=breaks[0] if breaks else None,
        breaks=breaks,
        last_id=kept.last_id,
        last_hash=kept.last_hash,
        last_checkpoint=kept.last_checkpoint,
    )


async def _keep(connection: AsyncConnection, verified: disclosures.Verified, walked_at: datetime, clock: Clock) -> None:
    values = {
        "last_id": verified.last_id,
        "last_hash": verified.last_hash,
        "last_checkpoint": verified.last_checkpoint,
        "checked": verified.checked,
        "breaks": list(verified.breaks),
        "walked_at": walked_at,
        "checked_at": clock.now(),
    }
    statement = insert(disclosure_walk).values(id=1, **values)
    await connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
