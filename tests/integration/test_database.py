"""Each service's migrations against real PostgreSQL: its own schema, its own version table, and no
way into another service's tables."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, String, insert, literal, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.support.clock import ManualClock
from tests.support.waiting import until
from timpora.alerts import models as alerts_models
from timpora.common import regions
from timpora.common.db.bootstrap import SERVICES
from timpora.common.db.engine import direct, driver_connection, make_engine
from timpora.common.db.migrations import alembic_config, upgrade
from timpora.common.settings import DatabaseSettings
from timpora.common.standing import local_today, local_today_sql, zone_name_sql, zone_of
from timpora.portal import models as portal_models
from timpora.registry.models import outbox, outbox_pending
from timpora.sharing.models import inbox


@pytest.fixture
async def engines(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[dict[str, AsyncEngine]]:
    engines = {name: make_engine(database_settings[name], application_name="test", schema=name) for name in SERVICES}
    for name, engine in engines.items():
        await upgrade(engine, f"timpora.{name}", schema=name)
    yield engines
    for engine in engines.values():
        await engine.dispose()


async def test_migrations_create_each_services_tables_in_its_own_schema(engines: dict[str, AsyncEngine]) -> None:
    expected = {
        "registry": {
            "alembic_version",
            "outbox",
            "outbox_pending",
            "operators",
            "sponsors",
            "foreigners",
            "movements",
            "permits",
            "residences",
            "stays",
            "history",
            "idempotency_keys",
            "expiry_notices",
            "previous_passports",
            "enforcement_actions",
            "accommodations",
            "unmatched_stays",
            "portal_keys",
        },
        "alerts": {
            "alembic_version",
            "inbox",
            "agency_keys",
            "operator_keys",
            "agencies",
            "routed_events",
            "alerts",
            "deliveries",
            "delivery_attempts",
            "gatherings",
            "digests",
            "portal_keys",
            "village_reports",
        },
        "sharing": {
            "alembic_version",
            "inbox",
            "projections",
            "projected_people",
            "projection_builds",
            "projection_history",
            "api_keys",
            "portal_keys",
            "outbox",
            "agreements",
            "disclosure_walk",
        },
        "portal": {"alembic_version", "officers", "sessions", "login_failures"},
    }
    for name, engine in engines.items():
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"), {"schema": name}
            )
            assert {row[0] for row in rows} == expected[name]


@pytest.mark.parametrize(
    ("service", "metadata"), [("alerts", alerts_models.metadata), ("portal", portal_models.metadata)]
)
async def test_the_migrations_make_the_columns_the_models_use(
    engines: dict[str, AsyncEngine], service: str, metadata: MetaData
) -> None:
    async with engines[service].connect() as connection:
        rows = await connection.execute(
            text("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = :schema"),
            {"schema": service},
        )
        migrated = {(row[0], row[1]) for row in rows}
    modelled = {(table.name, column.name) for table in metadata.tables.values() for column in table.columns}
    assert migrated - {(table, column) for table, column in migrated if table == "alembic_version"} == modelled


async def test_migrating_twice_changes_nothing(engines: dict[str, AsyncEngine]) -> None:
    engine = engines["registry"]
    await upgrade(engine, "timpora.registry", schema="registry")
    async with engine.connect() as connection:
        versions = (await connection.execute(text("SELECT version_num FROM registry.alembic_version"))).scalars().all()
    assert versions == [ScriptDirectory.from_config(alembic_config("timpora.registry")).get_current_head()]


async def test_a_row_round_trips_through_the_registry_outbox(engines: dict[str, AsyncEngine]) -> None:
    event_id = uuid.uuid4()
    async with engines["registry"].begin() as connection:
        await connection.execute(
            insert(outbox).values(
                event_id=event_id,
                event_type="id.timpora.foreigner.arrived.v1",
                topic="timpora.registry.events.v1",
                partition_key="f-1",
                headers={"ce_id": str(event_id)},
                payload='{"foreigner": {"full_name": "Li Wei"}}',
            )
        )
    async with engines["registry"].connect() as connection:
        row = (await connection.execute(select(outbox).where(outbox.c.event_id == event_id))).one()
    assert json.loads(row.payload) == {"foreigner": {"full_name": "Li Wei"}}
    async with engines["registry"].connect() as connection:
        pending = await connection.scalar(select(outbox_pending.c.id).where(outbox_pending.c.id == row.id))
    assert pending == row.id, "a row is written pending"
    assert row.created_at is not None


@pytest.mark.parametrize(
    ("intruder", "victim", "table"), [("alerts", "registry", "outbox"), ("sharing", "alerts", "inbox")]
)
async def test_a_service_cannot_read_another_services_tables(
    engines: dict[str, AsyncEngine], intruder: str, victim: str, table: str
) -> None:
    async with engines[intruder].connect() as connection:
        with pytest.raises(ProgrammingError, match="permission denied"):
            await connection.execute(text(f"SELECT * FROM {victim}.{table}"))  # noqa: S608 - fixed names


async def test_a_service_cannot_create_tables_outside_its_schema(engines: dict[str, AsyncEngine]) -> None:
    async with engines["sharing"].connect() as connection:
        with pytest.raises(ProgrammingError, match="permission denied"):
            await connection.execute(text("CREATE TABLE public.leak (id int)"))


async def test_the_inbox_refuses_a_second_row_for_the_same_event(engines: dict[str, AsyncEngine]) -> None:
    row = {"consumer": "c", "event_id": str(uuid.uuid4()), "event_type": "t", "topic": "x", "partition": 0, "offset": 1}
    async with engines["sharing"].begin() as connection:
        await connection.execute(insert(inbox).values(**row))
    async with engines["sharing"].begin() as connection:
        with pytest.raises(Exception, match="duplicate key"):
            await connection.execute(insert(inbox).values(**row))


async def test_postgresql_counts_a_persons_days_in_the_same_zone_as_python(engines: dict[str, AsyncEngine]) -> None:
    # 16:30 UTC: still one date in WIB, already the next in WITA and WIT.
    now = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    villages = [None, *(f"{province.code}.01.01.1001" for province in regions.children())]
    async with engines["registry"].connect() as connection:
        for village in villages:
            code = literal(village, String)
            zone, today = (
                await connection.execute(select(zone_name_sql(code), local_today_sql(now, zone_name_sql(code))))
            ).one()

            assert zone == zone_of(village).key, village
            assert today == local_today(ManualClock(now), village), village


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout_not_failed(
    engines: dict[str, AsyncEngine], database_admin: asyncpg.Connection
) -> None:
    # A PostgreSQL restart or an administrator's pg_terminate_backend closes every idle pooled connection; the next
    # request must get a working one, not an error (the engine checks at checkout, without a pre-ping's round trips).
    engine = engines["registry"]
    async with engine.connect() as connection:
        first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        pooled = await driver_connection(connection)  # back in the pool after this block, idle
    assert await database_admin.fetchval("SELECT pg_terminate_backend($1)", first)

    async def seen_closed() -> bool:
        return bool(pooled.is_closed())

    await until(seen_closed, what="the pooled connection seen closed by the server")
    async with engine.connect() as connection:
        second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert second != first


async def test_a_connection_lost_under_a_direct_statement_lets_the_pool_connect_anew(
    engines: dict[str, AsyncEngine], database_admin: asyncpg.Connection
) -> None:
    # A statement run on asyncpg directly (timpora.common.db.engine.direct) is outside SQLAlchemy's own handling of a
    # lost connection; it must be handled as SQLAlchemy would: the pool's older connections let go with it, so that a
    # link that died silently fails one request, not one for each pooled connection.
    engine = engines["registry"]

    async def backend(connection: AsyncConnection) -> int:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    async with engine.connect() as first, engine.connect() as second:
        before = {await backend(first), await backend(second)}
    lost: list[int] = []

    async def lose_the_connection() -> None:
        async with direct(engine) as driver:
            lost.append(await driver.fetchval("SELECT pg_backend_pid()"))
            sleeping = asyncio.ensure_future(driver.fetchval("SELECT pg_sleep(60)"))

            async def asleep() -> bool:
                return bool(
                    await database_admin.fetchval(
                        "SELECT true FROM pg_stat_activity WHERE pid = $1 AND state = 'active' "
                        "AND query LIKE 'SELECT pg_sleep%'",
                        lost[0],
                    )
                )

            # Cut while the statement runs, as a link lost under a read would be (not while it is being prepared).
            await until(asleep, what="the statement running")
            assert await database_admin.fetchval("SELECT pg_terminate_backend($1)", lost[0])
            await sleeping

    with pytest.raises(
        (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.exceptions.InterfaceError)
    ):
        await lose_the_connection()
    async with engine.connect() as first, engine.connect() as second:
        after = {await backend(first), await backend(second)}
    assert after.isdisjoint(before | set(lost))
