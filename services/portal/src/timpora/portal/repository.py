"""The portal's reads and writes of its own tables; nothing here decides anything."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.portal.models import login_failures, officers, sessions

#: How long an attempt waits for the one before it on the same account or address, and how often it looks.
ATTEMPT_PATIENCE_S = 2.0
ATTEMPT_POLL_S = 0.02
#: How long failed logins are kept (the throttle looks at the last minute; an operator may look at the day).
FAILURES_KEPT = timedelta(days=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_officer(
    session: AsyncSession, *, agency_id: str, username: str, role: str, password_hash: str
) -> uuid.UUID:
    officer_id = uuid.uuid4()
    await session.execute(
        insert(officers).values(
            id=officer_id,
            username=username,
            agency_id=agency_id,
            role=role,
            password_hash=password_hash,
            must_change_password=True,
        )
    )
    return officer_id


async def officer_named(session: AsyncSession, username: str) -> Row[Any] | None:
    return (await session.execute(select(officers).where(officers.c.username == username))).first()


async def officer(session: AsyncSession, officer_id: uuid.UUID) -> Row[Any] | None:
    return (await session.execute(select(officers).where(officers.c.id == officer_id))).first()


async def update_officer(session: AsyncSession, officer_id: uuid.UUID, **values: object) -> None:
    await session.execute(update(officers).where(officers.c.id == officer_id).values(**values))


async def hold_attempts(
    session: AsyncSession, *, username: str, address: str, patience_s: float = ATTEMPT_PATIENCE_S
) -> bool:
    """Takes, until the transaction ends, the account's and the address's turn: attempts on one account, or from one
    address, are counted and decided one after the other, each seeing the failures the one before it recorded (a
    burst of concurrent guesses cannot all be counted under the limit). Always the account first, then the address:
    two attempts never wait for each other the other way round. False if the turn did not come within
    ``patience_s``: a burst that long is throttled, and does not hold the database's connections while it waits."""
    deadline = time.monotonic() + patience_s
    for key in (f"portal-login-account:{username}", f"portal-login-address:{address}"):
        while not await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(key)))):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(ATTEMPT_POLL_S)
    return True


async def recent_failures(session: AsyncSession, *, username: str, address: str, since: datetime) -> tuple[int, int]:
    """Failed logins since ``since``: for the account, and from the address."""
    by_account = select(func.count()).where(login_failures.c.username == username, login_failures.c.at >= since)
    by_address = select(func.count()).where(login_failures.c.address == address, login_failures.c.at >= since)
    return int(await session.scalar(by_account) or 0), int(await session.scalar(by_address) or 0)


async def record_failure(session: AsyncSession, *, username: str, address: str, at: datetime) -> None:
    await session.execute(insert(login_failures).values(username=username, address=address, at=at))


async def forget_old(session: AsyncSession, *, now: datetime, session_limit: timedelta) -> None:
    """Failed logins past a day and sessions past their absolute limit go, at every login: what the throttle and
    the logins no longer need is not kept (a username typed wrong may be a password typed in the wrong field)."""
    await session.execute(delete(login_failures).where(login_failures.c.at < now - FAILURES_KEPT))
    await session.execute(delete(sessions).where(sessions.c.created_at < now - session_limit))


async def use_totp_step(session: AsyncSession, officer_id: uuid.UUID, secret: str, step: int) -> bool:
    """Records ``step`` as the officer's last code, if it is later than the last: False if another request used
    it (or a later one) first — two requests with one code cannot both pass."""
    result = await session.execute(
        update(officers)
        .where(
            officers.c.id == officer_id,
            (officers.c.totp_last_step.is_(None)) | (officers.c.totp_last_step < step),
        )
        .values(totp_secret=secret, totp_last_step=step)
    )
    return bool(getattr(result, "rowcount", 0))


async def open_session(session: AsyncSession, officer_id: uuid.UUID, *, stage: str, now: datetime) -> str:
    """A new session; returns the cookie's value (kept only as its hash)."""
    token = secrets.token_urlsafe(32)
    await session.execute(
        insert(sessions).values(
            token_sha256=_digest(token),
            officer_id=officer_id,
            stage=stage,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


async def session_of(session: AsyncSession, token: str) -> Row[Any] | None:
    return (await session.execute(select(sessions).where(sessions.c.token_sha256 == _digest(token)))).first()


async def update_session(session: AsyncSession, token: str, **values: object) -> None:
    await session.execute(update(sessions).where(sessions.c.token_sha256 == _digest(token)).values(**values))


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(sessions).where(sessions.c.token_sha256 == _digest(token)))


async def close_sessions_of(session: AsyncSession, officer_id: uuid.UUID) -> int:
    """Ends every session of the officer (a password changed, an account disabled or reset)."""
    result = await session.execute(delete(sessions).where(sessions.c.officer_id == officer_id))
    return int(getattr(result, "rowcount", 0) or 0)
