"""The disclosure record's check, kept: a look at the record (the controller's page, ``GET /v1/disclosures``) goes
on from where the last check ended, and the whole chain is walked again from its first entry, in the background,
every ``disclosure_walk_s``.

Why: walking the chain costs some 40 µs an entry, and the log keeps every disclosure ever made (millions in a
year). A look that walked it all grew with the log until it outlasted the portal's wait and the data-protection
officer's page showed an error instead of the record. Going on from the last check reads only what was added
since; what that cannot see (an entry checked before and edited or removed since, any but the newest one checked)
the whole walk sees, and the page says when that last ran, or warns when it is overdue.

Where the last check ended is kept in ``disclosure_walk`` (one row), so a restarted or second instance goes on from
it too. The sharing service's role can write that row but cannot edit the log (timpora.common.disclosures), and
neither can a forged row stop the whole walk: when it is due is judged by the database's clock, a walk dated in the
future is due at once, and the page warns when none has run for two intervals. What a check found stays found: a
whole walk adds to the reasons kept, it never drops one (``timpora-sharing disclosures recheck`` starts afresh,
after an investigation, on the record of the admin audit log). The ``verify`` command, which also compares the
checkpoints' copies outside the database, remains the auditor's check.

Times are the database's, not the service's: instances whose clocks disagree, or a service clock that jumps, agree
on when the chain was last walked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common import disclosures
from timpora.sharing.models import disclosure_walk

log = logging.getLogger(__name__)

#: Looks and whole walks keep their result in turn, across instances: each goes on from the one before.
_TURN = text("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-walk'))")
#: One instance walks the whole chain at a time; the others leave it to that one.
_WHOLE_WALK = text("SELECT pg_try_advisory_xact_lock(hashtext('timpora-disclosure-whole-walk'))")
_KEPT = select(disclosure_walk).where(disclosure_walk.c.id == 1)
_NOW = select(func.clock_timestamp())
#: The row of a first walk not yet made: nothing checked, no walk, since now (nothing if there is a row).
_PENDING = (
    insert(disclosure_walk)
    .values(
        id=1,
        last_id=0,
        last_hash=disclosures.GENESIS,
        last_checkpoint=0,
        checked=0,
        breaks=[],
        walked_at=None,
        checked_at=func.clock_timestamp(),
    )
    .on_conflict_do_nothing(index_elements=["id"])
)
#: How often the worker looks whether a walk is due (a ``recheck`` or another instance may have changed it).
LOOK_S = 60.0
#: A walk dated this far past the database's clock is taken as not made (forged, or a clock set back since).
_SKEW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Check:
    result: disclosures.Verified
    #: When the whole chain was last walked from its first entry; None: the first whole walk is still to come.
    walked_at: datetime | None
    #: The whole walk is overdue (none for two intervals, or one dated in the future): the page warns.
    overdue: bool = False


async def current(engine: AsyncEngine, interval_s: float) -> Check:
    """The log checked up to its newest entry, going on from the last check. Until the first whole walk is kept (a
    new installation, or one just upgraded: the worker makes it at start) nothing is walked here, as a look would
    walk every entry while the officer waits; overdue once that has lasted two intervals."""
    async with engine.begin() as connection:
        await connection.execute(_TURN)
        kept = (await connection.execute(_KEPT)).first()
        now = await _now(connection)
        if kept is None or kept.walked_at is None:
            # Pending since the worker marked the first walk begun (``checked_at``).
            begun: datetime | None = None if kept is None else kept.checked_at
            overdue = begun is not None and (now - begun).total_seconds() > 2 * interval_s
            if overdue and begun is not None:
                log.error("the disclosure log's first whole walk has not ended since %s", begun.isoformat())
            return Check(disclosures.Verified(0), None, overdue)
        before = _verified(kept)
        result = await disclosures.verify(connection, after=before)
        await _keep(connection, result, kept.walked_at)
    _said(before, result)
    overdue = kept.walked_at > now + _SKEW or (now - kept.walked_at).total_seconds() > 2 * interval_s
    if overdue:
        log.error("the disclosure log's whole hash chain has not been walked since %s", kept.walked_at.isoformat())
    return Check(result, kept.walked_at, overdue)


#: Called with the connection, the kept check before and the one kept now, in the transaction that keeps it.
Kept = Callable[[AsyncConnection, disclosures.Verified, disclosures.Verified], Awaitable[None]]


async def walk_whole(
    engine: AsyncEngine,
    *,
    unless_within_s: float | None = None,
    afresh: bool = False,
    copies: Sequence[disclosures.Anchor] = (),
    on_kept: Kept | None = None,
) -> Check | None:
    """Walks the whole chain from its first entry (comparing its checkpoints with ``copies`` too, if given), and
    keeps the result with what the checks before it found; ``afresh`` (the ``recheck`` command) keeps the walk's
    alone, and ``on_kept`` records it in the same transaction. None, and nothing done, while another instance walks
    it, or when the last whole walk is less than ``unless_within_s`` old."""
    async with engine.connect() as plain, plain.begin():
        # Held for the walk: the other instances find it taken and leave the walk to this one.
        if not await plain.scalar(_WHOLE_WALK):
            return None
        started = await _now(plain)
        if unless_within_s is not None and not _due(await _walked_at(plain), started, unless_within_s):
            return None  # another instance walked it just now
        # Outside the turn: a look meanwhile goes on from the last check and need not wait for this.
        whole = await disclosures.verify(plain, copies)
        await plain.execute(_TURN)
        kept = (await plain.execute(_KEPT)).first()
        before = disclosures.Verified(0) if kept is None or kept.walked_at is None else _verified(kept)
        result = whole
        if before.last_id and not afresh:
            # What the looks found (the newest rows checked removed since, say) a whole walk cannot see: it is
            # kept, and so is the looks' position when it is ahead of this walk's.
            went_on = await disclosures.verify(plain, after=before)
            ahead = went_on if went_on.last_id >= whole.last_id else whole
            breaks = tuple(dict.fromkeys(went_on.breaks + whole.breaks))
            result = dataclasses.replace(ahead, broken=breaks[0] if breaks else None, breaks=breaks)
        await _keep(plain, result, started)
        if on_kept is not None:
            await on_kept(plain, before, result)
    _said(before, result)
    return Check(result, started)


async def walk_every(engine: AsyncEngine, interval_s: float) -> None:
    """Walks the whole chain whenever the last whole walk is ``interval_s`` old by the database's clock (at once if
    none was ever made, or the one kept is dated in the future), until cancelled; a walk that fails is tried again
    after ``interval_s`` (not sooner: over millions of entries it is heavy)."""
    while True:
        pause = min(LOOK_S, interval_s)
        try:
            async with engine.begin() as connection:
                walked_at = await _walked_at(connection)
                now = await _now(connection)
                if walked_at is None:
                    # The first walk marked begun (once: a row there stays): a page that waits for it too long warns.
                    await connection.execute(_PENDING)
            if _due(walked_at, now, interval_s):
                if walked_at is not None and walked_at > now + _SKEW:
                    log.error("the disclosure log's last whole walk is dated in the future: walking it now")
                await walk_whole(engine, unless_within_s=interval_s)
        except Exception:
            log.warning("walking the disclosure log failed", exc_info=True)
            pause = interval_s
        await asyncio.sleep(pause)


def _due(walked_at: datetime | None, now: datetime, interval_s: float) -> bool:
    """Whether a whole walk is due: none made, one dated in the future, or the last ``interval_s`` old."""
    return walked_at is None or walked_at > now + _SKEW or (now - walked_at).total_seconds() >= interval_s


async def _now(connection: AsyncConnection) -> datetime:
    now: datetime = (await connection.execute(_NOW)).scalar_one()
    return now


async def _walked_at(connection: AsyncConnection) -> datetime | None:
    walked_at: datetime | None = await connection.scalar(select(disclosure_walk.c.walked_at))
    return walked_at


def _said(before: disclosures.Verified, after: disclosures.Verified) -> None:
    """Logs what a check found that the one before it had not (row ids and checkpoints only: nothing personal)."""
    found = [reason for reason in after.breaks if reason not in before.breaks]
    if found:
        log.error("the disclosure log's hash chain does not hold: %s", "; ".join(found))


def _verified(kept: Row[Any]) -> disclosures.Verified:
    breaks = tuple(kept.breaks)
    return disclosures.Verified(
        checked=kept.checked,
        broken=breaks[0] if breaks else None,
        breaks=breaks,
        last_id=kept.last_id,
        last_hash=kept.last_hash,
        last_checkpoint=kept.last_checkpoint,
    )


async def _keep(connection: AsyncConnection, result: disclosures.Verified, walked_at: datetime) -> None:
    values = {
        "last_id": result.last_id,
        "last_hash": result.last_hash,
        "last_checkpoint": result.last_checkpoint,
        "checked": result.checked,
        "breaks": list(result.breaks),
        "walked_at": walked_at,
        "checked_at": func.clock_timestamp(),
    }
    statement = insert(disclosure_walk).values(id=1, **values)
    await connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
