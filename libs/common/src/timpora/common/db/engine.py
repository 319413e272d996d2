"""Async SQLAlchemy engines and sessions over asyncpg, one way for every service."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from timpora.common.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings, *, application_name: str, schema: str) -> AsyncEngine:
    """An engine whose connections see only ``schema`` (plus pg_catalog) and time out runaway statements."""
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=True,
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


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the commit that the consumer acks on.
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_connection(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one: for COPY, LISTEN and other things only asyncpg does.

    If ``connection`` is in a transaction (``engine.begin()``, ``session.begin()``), that transaction is
    opened in the database first: SQLAlchemy would otherwise open it only at its own first statement,
    and what is done directly on asyncpg before that would commit on its own, one statement at a time.
    """
    if connection.in_transaction():
        await connection.execute(text("SELECT 1"))
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection | None = raw.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no asyncpg connection under it")
    return driver


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
