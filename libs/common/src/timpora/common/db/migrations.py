"""Alembic, the same way for every service: each service's migrations live in its own package and its
own schema, with the version table in that schema too.

A service's ``migrations/env.py`` is two lines: it calls :func:`run_env` with its metadata and schema.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from timpora.common.db.engine import make_engine
from timpora.common.settings import ServiceSettings

VERSION_TABLE = "alembic_version"


def alembic_config(package: str, *, url: str | None = None) -> Config:
    """The Alembic config for the ``migrations`` folder of ``package`` (e.g. ``timpora.registry``)."""
    location = Path(str(resources.files(package).joinpath("migrations")))
    config = Config()
    config.set_main_option("script_location", str(location))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, package: str, *, schema: str, revision: str = "head") -> None:
    """Brings ``schema`` to ``revision`` over ``engine``; safe when several instances start at once."""
    config = alembic_config(package)

    def _upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        # Instances starting together queue here instead of racing to create the same tables.
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"timpora-migrate-{schema}"}
        )
        await connection.run_sync(_upgrade)


async def migrated_engine(settings: ServiceSettings, *, purpose: str) -> AsyncEngine:
    """An engine on the service's schema, brought up to date first, so a command works on a fresh database."""
    service = settings.service_name
    engine = make_engine(settings.database, application_name=f"timpora-{service}-{purpose}", schema=service)
    await upgrade(engine, f"timpora.{service}", schema=service)
    return engine


def run_env(metadata: MetaData, schema: str) -> None:
    """The body of every service's ``env.py``."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata, schema)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection given and no sqlalchemy.url set")
    asyncio.run(_run_with_new_engine(url, metadata, schema))


async def _run_with_new_engine(url: str, metadata: MetaData, schema: str) -> None:
    engine = create_async_engine(
        url, poolclass=pool.NullPool, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, metadata, schema)
    finally:
        await engine.dispose()


def _run(connection: Connection, metadata: MetaData, schema: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=False,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
