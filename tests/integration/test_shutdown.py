"""Every service, as a real process, stops within 10 s of SIGTERM whatever it is doing — working through
a backlog, in the middle of a batch, with Kafka frozen, with PostgreSQL frozen — and loses nothing of
what it was doing: started again, it finishes the work, each event applied once.

Before the stop was bounded, a batch in flight held the stop for FastStream's 15 s graceful wait, a
frozen broker held it for ever (the consumer's LeaveGroup and the producer's flush never return),
and a frozen database held it for as long as its connections took to fail.

The registry's work is its outbox (the relay publishes it); the alerts' and sharing's is the registry
topic (their consumers apply it, recording each event in their inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.alerts.people import Person
from tests.support.faults import KafkaNode, kafka_libs, kafka_node, tcp_proxy
from tests.support.processes import ServiceProcess, start_service
from tests.support.stack import Stack
from timpora.common.db.engine import make_engine
from timpora.common.db.migrations import upgrade
from timpora.common.events import encode
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import DatabaseSettings, KafkaSettings

#: What the issue asks: stopped within 10 s of SIGTERM.
STOP_WITHIN_S = 10.0
SERVICES = ("registry", "alerts", "sharing")
#: Work enough that a stop lands while the service is still at it (the rates differ a lot).
BACKLOG = {"registry": 40_000, "alerts": 3_000, "sharing": 500}
#: Where each service's consumer claims an event: the first statement of every batch's transaction.
WORK_TABLE = {"registry": "registry.outbox", "alerts": "alerts.inbox", "sharing": "sharing.inbox"}

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Backlog:
    """Work waiting for a service: outbox rows for the registry's relay, registry events for a consumer."""

    service: str
    ids: list[uuid.UUID]

    async def through(self, admin: asyncpg.Connection) -> int:
        """How much of it the service has done: published (registry), applied and recorded (consumers)."""
        if self.service == "registry":
            query = "SELECT count(*) FROM registry.outbox WHERE event_id = ANY($1) AND published_at IS NOT NULL"
        else:
            query = f"SELECT count(*) FROM {self.service}.inbox WHERE event_id::uuid = ANY($1)"  # noqa: S608 - fixed names
        count: int = await admin.fetchval(query, self.ids)
        return count


@pytest.fixture
async def admin(stack: Stack, database_urls: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database: it sees everything and can lock what the services use."""
    test_database = make_url(database_urls["registry"]).database
    url = make_url(stack.pg_admin_url).set(drivername="postgresql", database=test_database)
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield connection
    await connection.close()


async def _until(condition: Callable[[], Awaitable[bool]], *, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


async def _backlog(
    service: str, kafka: KafkaSettings, database: DatabaseSettings, admin: asyncpg.Connection, count: int
) -> Backlog:
    # Migrated first: a test may lock the service's tables before the service starts.
    engine = make_engine(database, application_name="test", schema=service)
    try:
        await upgrade(engine, f"timpora.{service}", schema=service)
    finally:
        await engine.dispose()
    if service == "registry":
        # Outbox rows as the registry writes them, straight into its table; what they say does not matter
        # here (nobody reads the topic), so one event is copied under many ids.
        event = Person().arrived()
        record = encode(event)
        headers, payload = record.headers_dict(), record.value.decode()
        ids = [uuid.uuid4() for _ in range(count)]
        topic = kafka.catalog.registry_events.name
        rows = [
            (row_id, event.type, topic, str(event.subject), json.dumps(headers | {"ce_id": str(row_id)}), payload)
            for row_id in ids
        ]
        columns = ["event_id", "event_type", "topic", "partition_key", "headers", "payload"]
        await admin.copy_records_to_table("outbox", schema_name="registry", records=rows, columns=columns)
        return Backlog(service, ids)
    events = [Person().arrived() for _ in range(count)]
    await ensure_topics(kafka, kafka.catalog.static)
    producer = EventProducer(kafka, client_id="test-backlog")
    await producer.start()
    try:
        await producer.publish_many(kafka.catalog.registry_events.name, events)
    finally:
        await producer.stop()
    return Backlog(service, [uuid.UUID(event.id) for event in events])


async def _stop_in_time(process: ServiceProcess) -> None:
    seconds = await process.stop()
    assert seconds < STOP_WITHIN_S, f"{process.service} took {seconds:.1f} s to stop:\n{process.tail()}"
    assert "service stopped" in [line["message"] for line in process.messages()], process.tail()


@contextlib.asynccontextmanager
async def _running(
    service: str, kafka: KafkaSettings, database: DatabaseSettings, log: Path
) -> AsyncIterator[ServiceProcess]:
    process = start_service(service, kafka=kafka, database=database, log=log)
    try:
        await process.ready()
        yield process
    finally:
        process.kill()


async def _finished_after_a_restart(
    backlog: Backlog, kafka: KafkaSettings, database: DatabaseSettings, admin: asyncpg.Connection, log: Path
) -> None:
    """Started again, the service does all of the backlog: nothing the stop interrupted is lost."""
    async with _running(backlog.service, kafka, database, log) as again:

        async def all_through() -> bool:
            return await backlog.through(admin) == len(backlog.ids)

        await _until(all_through, what=f"{backlog.service} finished the backlog after its restart")
        await _stop_in_time(again)


async def _under_way(backlog: Backlog, admin: asyncpg.Connection) -> None:
    async def some_through() -> bool:
        return await backlog.through(admin) > 0

    await _until(some_through, what=f"{backlog.service} working")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_working_through_a_backlog_stops_in_time_and_later_finishes_it(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka_settings, database, admin, BACKLOG[service])
    async with _running(service, kafka_settings, database, log) as process:
        await _under_way(backlog, admin)

        await _stop_in_time(process)

    assert await backlog.through(admin) < len(backlog.ids), "the stop came after the work was done"
    await _finished_after_a_restart(backlog, kafka_settings, database, admin, log)


@contextlib.asynccontextmanager
async def _locked(admin: asyncpg.Connection, table: str) -> AsyncIterator[None]:
    """Holds ``table`` locked against everyone else: a service's statement on it waits, mid-transaction."""
    transaction = admin.transaction()
    await transaction.start()
    try:
        await admin.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await transaction.rollback()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stopped_in_the_middle_of_a_batch_stops_in_time_and_the_batch_is_not_lost(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka_settings, database, admin, 300)
    role = make_url(database.url.get_secret_value()).username

    async def batch_waiting() -> bool:
        query = "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'"
        return bool(await admin.fetchval(query, role))

    # Locked before the start, so that no batch commits before one is caught in the middle.
    async with _locked(admin, WORK_TABLE[service]), _running(service, kafka_settings, database, log) as process:
        await _until(batch_waiting, what=f"{service}'s batch waiting on the lock")

        await _stop_in_time(process)

    assert await backlog.through(admin) == 0
    await _finished_after_a_restart(backlog, kafka_settings, database, admin, log)


@pytest.fixture(scope="module")
def private_kafka(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> Iterator[KafkaNode]:
    """A broker of this module's own, to freeze without freezing the other tests' (or a developer's)."""
    del stack  # only the local stack's jars are needed, and they come with it
    if not kafka_libs().is_dir():
        pytest.skip(f"no Kafka jars in {kafka_libs()} (deploy/local/stack fetches them)")
    with kafka_node(tmp_path_factory.mktemp("kafka")) as node:
        yield node


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stops_in_time_while_kafka_is_frozen(
    service: str,
    private_kafka: KafkaNode,
    database_settings: dict[str, DatabaseSettings],
    admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap_servers, namespace=f"test-{uuid.uuid4().hex[:12]}")
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka, database, admin, BACKLOG[service])
    async with _running(service, kafka, database, log) as process:
        await _under_way(backlog, admin)
        private_kafka.freeze()
        try:
            await asyncio.sleep(1)  # requests in flight, none answered

            await _stop_in_time(process)
        finally:
            private_kafka.thaw()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stops_in_time_while_postgresql_is_frozen(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    url = make_url(database_settings[service].url.get_secret_value())
    backlog = await _backlog(service, kafka_settings, database_settings[service], admin, BACKLOG[service])
    async with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = DatabaseSettings(
            url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), pool_size=5
        )
        async with _running(service, kafka_settings, through_proxy, tmp_path / f"{service}.log") as process:
            await _under_way(backlog, admin)
            proxy.black_hole()
            await asyncio.sleep(1)  # statements in flight, none answered

            await _stop_in_time(process)
