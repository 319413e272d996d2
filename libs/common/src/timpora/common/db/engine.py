"""Async SQLAlchemy engines and sessions over asyncpg, one way for every service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from timpora.common.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings, *, application_name: str, schema: str) -> AsyncEngine:
    """An engine whose connections see only ``schema`` (plus pg_catalog) and time out runaway statements."""
    engine = create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No pre-ping: on asyncpg it is a transaction of its own (BEGIN, ";", ROLLBACK), three round trips at every
        # checkout, more than half of what a simple write costs. ``_alive`` below does the same job without one.
        # Error messages would otherwise carry the statement's parameters: names, passport numbers.
        hide_parameters=True,
        connect_args={
            "server_settings": {
                "application_name": application_name,
                "search_path": schema,
                "statement_timeout": str(settings.statement_timeout_ms),
            }
        },
    )
    event.listen(engine.sync_engine, "checkout", _alive)
    return engine


def _alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:  # noqa: ANN401 - SQLAlchemy's pool event
    """Refuses a pooled connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout): the
    pool then discards it and checks out another, or connects anew, as a failed pre-ping would make it.

    asyncio reads every socket as data arrives, so a connection the server closed while it sat in the pool is known to
    be closed (asyncpg's ``is_closed``) without a round trip. A connection that died with no word from the server (a
    cut cable) is found at its first statement, as it would be right after a pre-ping too; SQLAlchemy then
    invalidates the whole pool (a disconnect), so the next checkouts connect anew.
    """
    driver: asyncpg.Connection | None = dbapi_connection.driver_connection
    if driver is None or driver.is_closed():  # type: ignore[no-untyped-call]  # asyncpg's is untyped
        raise DisconnectionError("the server closed this pooled connection")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the commit that the consumer acks on.
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_connection(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one: for COPY, LISTEN and other things only asyncpg does.

    If ``connection`` is in a transaction (``engine.begin()``, ``session.begin()``), that transaction is
    opened in the database first: SQLAlchemy would otherwise open it only at its own first statement,
    and what is done directly on asyncpg before that would commit on its own, one statement at a time.
    """
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection | None = raw.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no asyncpg connection under it")
    # Opened once: a transaction already open in the database (an earlier statement opened it) needs no round trip.
    if connection.in_transaction() and not driver.is_in_transaction():  # type: ignore[no-untyped-call]
        await connection.execute(text("SELECT 1"))
    return driver


#: What asyncpg raises when the connection itself is lost (not a statement refused): closed, cut, or the server going
#: (and its protocol confused, as when the connection is cut while a statement is being prepared).
_LOST = (
    OSError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
)


@asynccontextmanager
async def direct(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's asyncpg connection, for a statement run on it directly, with no transaction around it.

    A lost connection is handled as SQLAlchemy handles one under its own statements: every connection the pool opened
    before it is let go, so the next checkouts connect anew. Without this, a link that died silently (a cut cable,
    see :func:`_alive`) would fail one request for each connection pooled, each after the network's timeout.
    """
    async with engine.connect() as connection:
        driver = await driver_connection(connection)
        try:
            yield driver
        except _LOST as error:
            pooled = await connection.get_raw_connection()
            engine.sync_engine.pool._invalidate(pooled, error)  # noqa: SLF001 - what SQLAlchemy does on a disconnect
            raise


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
