"""The outbox's versions 2 and 3 against real PostgreSQL (timpora.common.outbox.table): what is still to be
published is an id in ``outbox_pending``, put there by the statement that writes the row, whatever that statement
is (version 2, the registry's); or the row itself, deleted once published (version 3, the sharing service's).
Each case migrates a database of its own: the shared test database is at the head already."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import stack as stacks
from tests.support.scratch import ScratchDatabase, scratch_database
from tests.support.waiting import until
from timpora.common.db.migrations import alembic_config, upgrade
from timpora.common.outbox import relay

#: Each service with an outbox, and its last revision of version 1.
VERSION_1 = {"registry": "0011", "sharing": "0012"}
#: And of version 2: the registry's is its head.
VERSION_2 = {"registry": "head", "sharing": "0013"}


@pytest.fixture
async def scratch(stack: stacks.Stack) -> AsyncIterator[ScratchDatabase]:
    async with scratch_database(stack.pg_admin_url, role_prefix="timpora_outboxtest") as database:
        yield database


async def _downgrade(engine: AsyncEngine, service: str, revision: str) -> None:
    config = alembic_config(f"timpora.{service}")

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


def _row() -> tuple[object, ...]:
    event_id = uuid.uuid4()
    headers = json.dumps({"ce_id": str(event_id)})
    return (event_id, "id.timpora.foreigner.arrived.v1", "timpora.registry.events.v1", str(uuid.uuid4()), headers, "{}")


_COLUMNS = ("event_id", "event_type", "topic", "partition_key", "headers", "payload")
_INSERT = (
    "INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload) "
    "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id"
)


async def _pending(connection: asyncpg.Connection, schema: str) -> set[int]:
    return {row["id"] for row in await connection.fetch(f"SELECT id FROM {schema}.outbox_pending")}  # noqa: S608


@pytest.mark.parametrize("service", sorted(VERSION_1))
async def test_what_version_1_had_not_published_is_pending_after_the_upgrade_and_back(
    scratch: ScratchDatabase, service: str
) -> None:
    engine = scratch.engine(service)
    try:
        await upgrade(engine, f"timpora.{service}", schema=service, revision=VERSION_1[service])
        admin = scratch.admin
        await admin.execute(f"SET search_path = {service}")
        ids = [await admin.fetchval(_INSERT, *_row()) for _ in range(3)]
        await admin.execute("UPDATE outbox SET published_at = now() WHERE id = $1", ids[0])

        await upgrade(engine, f"timpora.{service}", schema=service, revision=VERSION_2[service])

        assert await _pending(admin, service) == set(ids[1:])
        columns = await admin.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'outbox'",
            service,
        )
        assert "published_at" not in {row["column_name"] for row in columns}

        await _downgrade(engine, service, VERSION_1[service])

        marks = dict(await admin.fetch("SELECT id, published_at = created_at FROM outbox ORDER BY id"))
        # Published when written: version 1's retention period then runs from where version 2 counted it.
        assert marks == {ids[0]: True, ids[1]: None, ids[2]: None}
        await upgrade(engine, f"timpora.{service}", schema=service, revision=VERSION_2[service])
        assert await _pending(admin, service) == set(ids[1:])
    finally:
        await engine.dispose()


async def test_every_statement_that_writes_outbox_rows_makes_them_pending_and_tells_the_relay(
    scratch: ScratchDatabase,
) -> None:
    engine = scratch.engine("registry")
    await upgrade(engine, "timpora.registry", schema="registry")
    await engine.dispose()
    # As the service's own role: the trigger writes with the privileges of whoever inserts.
    service = await scratch.connect("registry")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await scratch.connect("registry")
    await listener.add_listener("timpora_registry_outbox", lambda *args: heard.put_nowait(str(args[2])))
    try:
        written = {await service.fetchval(_INSERT, *_row())}
        many = await service.fetch(
            "INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload) "
            "SELECT gen_random_uuid(), 'id.timpora.foreigner.arrived.v1', 'timpora.registry.events.v1', "
            "'f-' || n, '{}', '{}' FROM generate_series(1, 25) AS n RETURNING id"
        )
        written |= {row["id"] for row in many}
        before = set(await service.fetchval("SELECT coalesce(array_agg(id), '{}') FROM outbox"))
        # The importer's way: COPY, which runs statement triggers as INSERT does.
        await service.copy_records_to_table("outbox", records=[_row() for _ in range(40)], columns=_COLUMNS)
        copied = set(await service.fetchval("SELECT array_agg(id) FROM outbox")) - before
        assert len(copied) == 40
        written |= copied
        async with service.transaction():
            await service.fetchval(_INSERT, *_row())
            await service.execute("SELECT 1")
        rolled_back = service.transaction()
        await rolled_back.start()
        await service.fetchval(_INSERT, *_row())
        await rolled_back.rollback()

        pending = await _pending(service, "registry")
        assert written < pending, "every row written is pending"
        assert len(pending) == len(written) + 1, "and nothing of a transaction rolled back"
        assert pending == set(await service.fetchval("SELECT array_agg(id) FROM outbox"))
        await until(lambda: _heard(heard, 4), what="one notification per committed statement")
    finally:
        await listener.close()
        await service.close()


async def _heard(queue: asyncio.Queue[str], count: int) -> bool:
    return queue.qsize() >= count


async def _backlog(connection: asyncpg.Connection, topic: str, *, payload_bytes: int = 2) -> None:
    """5,000 outbox rows to ``topic`` in one statement (an import's worth), payloads of ``payload_bytes``."""
    await connection.execute(
        "INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload) "
        "SELECT gen_random_uuid(), 'id.timpora.foreigner.arrived.v1', $1, 'f-' || n, '{}', repeat('x', $2) "
        "FROM generate_series(1, 5000) AS n",
        topic,
        payload_bytes,
    )


def _rows_read_from(plan: dict[str, object], table: str) -> int:
    """Rows the plan's nodes on ``table`` produced, over all their loops."""
    read = int(plan["Actual Rows"]) * int(plan["Actual Loops"]) if plan.get("Relation Name") == table else 0  # type: ignore[call-overload]
    children = plan.get("Plans", [])
    assert isinstance(children, list)
    return read + sum(_rows_read_from(child, table) for child in children)


@pytest.mark.parametrize("plan_cache_mode", ["force_generic_plan", "force_custom_plan"])
async def test_the_relays_read_looks_up_the_pending_rows_and_walks_nothing_published(
    scratch: ScratchDatabase, plan_cache_mode: str
) -> None:
    engine = scratch.engine("registry")
    await upgrade(engine, "timpora.registry", schema="registry")
    await engine.dispose()
    service = await scratch.connect("registry")
    try:
        await _backlog(service, "timpora.registry.events.v1")
        # The statistics of an import just written, all of it pending; then the relay has sent all but the last
        # few before they are taken again: a drain under way, or a week of published rows. Autovacuum would take
        # them again at any moment, and the test would pass whatever the read.
        await service.execute("ALTER TABLE outbox_pending SET (autovacuum_enabled = false)")
        await service.execute("ANALYZE outbox, outbox_pending")
        await service.execute("DELETE FROM outbox_pending WHERE id <= (SELECT max(id) - 20 FROM outbox)")
        await service.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        await service.execute(f"PREPARE claim(bigint[], int, text) AS {relay.CLAIM}")

        explained = await service.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim('{}', 2000, 'timpora.%')")
        plan = json.loads(explained)[0]["Plan"]
        assert plan["Actual Rows"] == 20
        assert _rows_read_from(plan, "outbox") == 20, "each pending row looked up once, no published one read"
    finally:
        await service.close()


async def test_version_3_keeps_only_what_is_unpublished_and_back_every_row_left_is_pending(
    scratch: ScratchDatabase,
) -> None:
    engine = scratch.engine("sharing")
    try:
        await upgrade(engine, "timpora.sharing", schema="sharing", revision=VERSION_2["sharing"])
        admin = scratch.admin
        await admin.execute("SET search_path = sharing")
        ids = [await admin.fetchval(_INSERT, *_row()) for _ in range(3)]
        await admin.execute("DELETE FROM outbox_pending WHERE id = $1", ids[0])  # published under version 2

        await upgrade(engine, "timpora.sharing", schema="sharing")

        # The published row is gone at once; what was still to be published is the outbox itself.
        assert [row["id"] for row in await admin.fetch("SELECT id FROM outbox ORDER BY id")] == ids[1:]
        assert await admin.fetchval("SELECT to_regclass('sharing.outbox_pending')") is None
        # A row written now is told to the relay, and kept pending by nothing but itself.
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await scratch.connect("sharing")
        try:
            await listener.add_listener("timpora_sharing_outbox", lambda *args: heard.put_nowait(str(args[2])))
            ids.append(await admin.fetchval(_INSERT, *_row()))
            await until(lambda: _heard(heard, 1), what="the relay told of the new row")
        finally:
            await listener.close()

        await _downgrade(engine, "sharing", VERSION_2["sharing"])

        assert await _pending(admin, "sharing") == set(ids[1:]), "every row left is one not yet published"
        await upgrade(engine, "timpora.sharing", schema="sharing")
        assert [row["id"] for row in await admin.fetch("SELECT id FROM outbox ORDER BY id")] == ids[1:]
    finally:
        await engine.dispose()


async def test_the_version_3_relays_count_goes_by_the_ids_index_not_through_what_was_published(
    scratch: ScratchDatabase,
) -> None:
    engine = scratch.engine("sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    await engine.dispose()
    service = await scratch.connect("sharing")
    try:
        await _backlog(service, "timpora.sharing.agency.a.v1", payload_bytes=2000)
        # A backlog published but for its last few, not yet vacuumed: its pages are still the table's.
        await service.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        await service.execute("ANALYZE outbox")
        await service.execute("DELETE FROM outbox WHERE id <= (SELECT max(id) - 20 FROM outbox)")
        lag = relay.LAG_DELETING.text
        for name, value in (("cap", "100000"), ("topics", "'timpora.%'")):
            lag = lag.replace(f":{name}", value)
        explained = await service.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {lag}")
        assert "Seq Scan" not in json.dumps(explained), "no scan of every page the backlog left"
        assert await service.fetchval(lag) == 20
    finally:
        await service.close()
