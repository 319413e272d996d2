"""A database of a test's own, made as ``make run`` makes one (every service's role and schema), dropped after.

For what the shared test database cannot hold: a schema at an older revision, a table tampered with by its owner.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from timpora.common.db.bootstrap import fresh_database


@dataclass(frozen=True)
class ScratchDatabase:
    #: Each service's URL (its own role), as fresh_database gives them.
    urls: dict[str, str]
    #: A connection as the administrator, to the scratch database.
    admin: asyncpg.Connection

    def engine(self, service: str) -> AsyncEngine:
        """An engine as ``service``'s own role, in its schema; the caller disposes of it."""
        return create_async_engine(self.urls[service], connect_args={"server_settings": {"search_path": service}})

    async def connect(self, service: str) -> asyncpg.Connection:
        """A plain asyncpg connection as ``service``'s own role, in its schema."""
        connection: asyncpg.Connection = await asyncpg.connect(
            _plain(self.urls[service]), server_settings={"search_path": service}
        )
        return connection


def _plain(url: str, database: str | None = None) -> str:
    plain = make_url(url).set(drivername="postgresql")
    return (plain if database is None else plain.set(database=database)).render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_database(admin_url: str, *, role_prefix: str) -> AsyncIterator[ScratchDatabase]:
    database = f"{role_prefix}_{uuid.uuid4().hex[:8]}"
    urls = await fresh_database(admin_url, database, role_prefix=role_prefix)
    admin = await asyncpg.connect(_plain(admin_url, database=database))
    try:
        yield ScratchDatabase(urls, admin)
    finally:
        await admin.close()
        server = await asyncpg.connect(_plain(admin_url))
        try:
            await server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await server.close()
