"""Every service, as a real process, stops within 10 s of SIGTERM whatever it is doing — starting,
working through a backlog, in the middle of a batch's transaction, answering a request, with Kafka
frozen, with PostgreSQL frozen — and loses nothing of what it was doing: where a test starts it again,
it finishes the work.

Before the stop was bounded, a batch in flight held the stop for FastStream's 15 s graceful wait, a
frozen broker held it for ever (the consumer's LeaveGroup and the producer's flush never return), a
frozen database held it for as long as its connections took to fail, and a start waiting on either
ignored SIGTERM until its own timeouts ran out.

The registry's work is its outbox (the relay publishes it); the alerts' and sharing's is the registry
topic (their consumers apply it, recording each event in their inbox). The portal has no such work and no Kafka:
it is in the tests of a frozen PostgreSQL only (a request waiting on the database, a start waiting on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy.engine import make_url

from tests.alerts.people import Person
from tests.support.faults import KafkaNode, TcpProxy, kafka_libs, kafka_node, tcp_proxy
from tests.support.kafka import new_namespace
from tests.support.processes import ServiceProcess, start_service
from tests.support.stack import Stack
from tests.support.waiting import until
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.events import KafkaRecord, encode
from timpora.common.kafka.admin import ensure_topics, records_to_end
from timpora.common.kafka.producer import EventProducer, ProducerReplacedError
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.common.topics import TopicSpec
from timpora.registry.operators import add_operator

#: What the issue asks: stopped within 10 s of SIGTERM.
STOP_WITHIN_S = 10.0
#: The services with work from Kafka or for it (a backlog, a batch, a broker to freeze).
SERVICES = ("registry", "alerts", "sharing")
#: And the portal, which does not use Kafka, where the test is about PostgreSQL alone.
WITH_PORTAL = (*SERVICES, "portal")
#: Work enough that a stop lands while the service is still at it (the rates differ a lot: the sharing service
#: applies 500 events a transaction, at about 1,000 a second).
BACKLOG = {"registry": 40_000, "alerts": 3_000, "sharing": 20_000}
#: A table each service writes in the middle of its batch, after the batch's transaction began: the
#: registry marks the rows it sent, alerts write the alerts, sharing the projections. Held locked, the
#: batch waits there, its first statements done and not committed.
MID_BATCH = {
    "registry": ("registry.outbox_pending", "SHARE"),  # the relay reads and sends; marking what it sent waits
    "alerts": ("alerts.alerts", "ACCESS EXCLUSIVE"),
    "sharing": ("sharing.projections", "ACCESS EXCLUSIVE"),
}

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Backlog:
    """Work waiting for a service: outbox rows for the registry's relay, registry events for a consumer."""

    service: str
    ids: list[uuid.UUID]
    #: The registry's: the first and last outbox id of the backlog's rows, which are all the ids between.
    outbox_ids: tuple[int, int] | None = None

    async def through(self, admin: asyncpg.Connection) -> int:
        """How much of it the service has done: published (registry), applied and recorded (consumers)."""
        if self.service == "registry":
            assert self.outbox_ids is not None, "a registry backlog knows its outbox ids"
            # Its pending ids counted by range on their index: looking the rows up by 40,000 event ids took long
            # enough, on a test database of many rows, for a relay to publish them all between two looks.
            waiting: int = await admin.fetchval(
                "SELECT count(*) FROM registry.outbox_pending WHERE id BETWEEN $1 AND $2", *self.outbox_ids
            )
            return len(self.ids) - waiting
        query = f"SELECT count(*) FROM {self.service}.inbox WHERE event_id::uuid = ANY($1)"  # noqa: S608
        count: int = await admin.fetchval(query, self.ids)
        return count


async def _migrated(service: str, database: DatabaseSettings) -> None:
    """A test may lock a service's tables before the service starts: they exist first."""
    engine = make_engine(database, application_name="test", schema=service)
    try:
        await upgrade(engine, f"timpora.{service}", schema=service)
    finally:
        await engine.dispose()


async def _backlog(
    service: str, kafka: KafkaSettings, database: DatabaseSettings, admin: asyncpg.Connection, count: int
) -> Backlog:
    await _migrated(service, database)
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
        first, last, count = await admin.fetchrow(
            "SELECT min(id), max(id), count(*) FROM registry.outbox WHERE event_id = ANY($1)", ids
        )
        assert count == last - first + 1 == len(ids), "the backlog's outbox ids are one run"
        return Backlog(service, ids, (first, last))
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
    """Started again, the service does all of the backlog: nothing the stop interrupted is lost (and the
    inbox, one row per event and consumer, says each event was applied once)."""
    async with _running(backlog.service, kafka, database, log) as again:

        async def all_through() -> bool:
            return await backlog.through(admin) == len(backlog.ids)

        await until(all_through, what=f"{backlog.service} finished the backlog after its restart")
        await _stop_in_time(again)


async def _under_way(backlog: Backlog, admin: asyncpg.Connection) -> None:
    async def some_through() -> bool:
        return await backlog.through(admin) > 0

    await until(some_through, what=f"{backlog.service} working")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_working_through_a_backlog_stops_in_time_and_later_finishes_it(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    database_admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka_settings, database, database_admin, BACKLOG[service])
    async with _running(service, kafka_settings, database, log) as process:
        await _under_way(backlog, database_admin)

        await _stop_in_time(process)

    assert await backlog.through(database_admin) < len(backlog.ids), "the stop came after the work was done"
    await _finished_after_a_restart(backlog, kafka_settings, database, database_admin, log)


@contextlib.asynccontextmanager
async def _locked(admin: asyncpg.Connection, table: str, mode: str) -> AsyncIterator[None]:
    """Holds ``table`` locked in ``mode``: a service's statement that conflicts with it waits, mid-transaction."""
    transaction = admin.transaction()
    await transaction.start()
    try:
        await admin.execute(f"LOCK TABLE {table} IN {mode} MODE")
        yield
    finally:
        await transaction.rollback()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stopped_in_the_middle_of_a_batch_stops_in_time_and_the_batch_is_not_lost(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    database_admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka_settings, database, database_admin, 300)
    role = make_url(database.url.get_secret_value()).username

    async def batch_waiting() -> bool:
        query = "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'"
        return bool(await database_admin.fetchval(query, role))

    table, mode = MID_BATCH[service]
    async with (
        _locked(database_admin, table, mode),
        _running(service, kafka_settings, database, log) as process,
    ):
        await until(batch_waiting, what=f"{service}'s batch waiting on {table}")

        await _stop_in_time(process)

    # The batch had done its first statements (claimed its events, or sent its rows); none of it committed.
    assert await backlog.through(database_admin) == 0
    await _finished_after_a_restart(backlog, kafka_settings, database, database_admin, log)


@pytest.fixture(scope="module")
def private_kafka(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> Iterator[KafkaNode]:
    """A broker of this module's own, to freeze without freezing the other tests' (or a developer's)."""
    del stack  # only the local stack's jars are needed, and they come with it
    if not kafka_libs().is_dir():
        message = f"no Kafka jars in {kafka_libs()} (deploy/local/stack fetches them)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"real-stack tests never skip in CI: {message}")
        pytest.skip(message)
    with kafka_node(tmp_path_factory.mktemp("kafka")) as node:
        yield node


@contextlib.asynccontextmanager
async def _frozen(broker: KafkaNode) -> AsyncIterator[None]:
    broker.freeze()
    try:
        yield
    finally:
        await broker.thawed()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stops_in_time_while_kafka_is_frozen(
    service: str,
    private_kafka: KafkaNode,
    database_settings: dict[str, DatabaseSettings],
    database_admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap_servers, namespace=new_namespace())
    database, log = database_settings[service], tmp_path / f"{service}.log"
    backlog = await _backlog(service, kafka, database, database_admin, BACKLOG[service])
    async with _running(service, kafka, database, log) as process:
        await _under_way(backlog, database_admin)
        async with _frozen(private_kafka):
            await asyncio.sleep(1)  # a deliberate fault window: requests in flight, none answered

            await _stop_in_time(process)


async def _starting(process: ServiceProcess) -> bool:
    """Whether the process has begun starting the application (its signal handlers are in place by then)."""
    return "Waiting for application startup." in [line["message"] for line in process.messages()]


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_stops_in_time_while_starting_against_a_frozen_kafka(
    service: str,
    private_kafka: KafkaNode,
    database_settings: dict[str, DatabaseSettings],
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap_servers, namespace=new_namespace())
    await _migrated(service, database_settings[service])
    async with _frozen(private_kafka):
        process = start_service(service, kafka=kafka, database=database_settings[service], log=tmp_path / "s.log")
        try:
            await until(lambda: _starting(process), what=f"{service} starting")
            await asyncio.sleep(1)  # past its database steps, the start waits on Kafka, which never answers

            await _stop_in_time(process)
        finally:
            process.kill()


@contextlib.asynccontextmanager
async def _through_a_proxy(database: DatabaseSettings) -> AsyncIterator[tuple[TcpProxy, DatabaseSettings]]:
    url = make_url(database.url.get_secret_value())
    async with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        yield proxy, DatabaseSettings(url=proxied, pool_size=5)


async def _readiness_waiting_on_the_database(process: ServiceProcess) -> asyncio.Task[int]:
    """A readiness check in flight (the portal's checks PostgreSQL alone), held by the frozen database."""

    async def ready() -> int:
        async with httpx.AsyncClient(timeout=60) as client:
            try:
                return (await client.get(f"{process.url}/readyz")).status_code
            except httpx.TransportError:
                return 0  # cut short by the stop

    return asyncio.create_task(ready())


async def _a_request_waiting_on_the_database(process: ServiceProcess, database: DatabaseSettings) -> asyncio.Task[int]:
    """A registry search in flight, held by the frozen database: uvicorn must not wait for it for ever."""
    engine = make_engine(database, application_name="test", schema="registry")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            token = await add_operator(session, f"officer-{uuid.uuid4().hex[:8]}")
    finally:
        await engine.dispose()

    async def search() -> int:
        async with httpx.AsyncClient(timeout=60) as client:
            try:
                answer = await client.get(
                    f"{process.url}/v1/foreigners", params={"name": "li"}, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TransportError:
                return 0  # cut short by the stop
            return answer.status_code

    return asyncio.create_task(search())


@pytest.mark.parametrize("service", WITH_PORTAL)
async def test_a_service_stops_in_time_while_postgresql_is_frozen(
    service: str,
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    database_admin: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    backlog = None
    if service in SERVICES:  # the portal has no backlog: a request of its own waits on the database instead
        backlog = await _backlog(service, kafka_settings, database_settings[service], database_admin, BACKLOG[service])
    async with (
        _through_a_proxy(database_settings[service]) as (proxy, proxied),
        _running(service, kafka_settings, proxied, tmp_path / f"{service}.log") as process,
    ):
        if backlog is not None:
            await _under_way(backlog, database_admin)
        proxy.black_hole()
        request = None
        if service == "registry":
            request = await _a_request_waiting_on_the_database(process, database_settings[service])
        elif service == "portal":
            request = await _readiness_waiting_on_the_database(process)
        await asyncio.sleep(1)  # a deliberate fault window: statements (and a request) in flight, none answered

        await _stop_in_time(process)
        if request is not None:
            assert await request != 200, "the frozen database cannot have answered the request"


@pytest.mark.parametrize("service", WITH_PORTAL)
async def test_a_service_stops_in_time_while_starting_against_a_frozen_postgresql(
    service: str, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    async with _through_a_proxy(database_settings[service]) as (proxy, proxied):
        proxy.black_hole()
        process = start_service(service, kafka=kafka_settings, database=proxied, log=tmp_path / f"{service}.log")
        try:

            async def connecting() -> bool:
                return proxy.accepted > 0 and await _starting(process)

            # Its first step, the migrations, now waits on a database that never answers.
            await until(connecting, what=f"{service} starting")
            await asyncio.sleep(1)

            await _stop_in_time(process)
        finally:
            process.kill()


async def test_a_producer_replaced_while_kafka_is_frozen_is_closed_in_time_and_its_waiters_told(
    private_kafka: KafkaNode,
) -> None:
    """A failed send replaces the producer (libs/common kafka/producer.py); the old one is done with before the new
    one sends anything, so that a batch it still retries cannot land after a newer one. With the broker frozen
    the old one would retry for ever: it is closed all the same, within the request timeout, and whoever waits on
    what it held is told it failed rather than left waiting. Once the broker answers, a fresh producer sends."""
    settings, topic = await _one_partition(private_kafka)
    producer = EventProducer(settings, client_id="test-replaced")
    await producer.start()
    try:
        await producer.send_record(topic, KafkaRecord(key=b"k", value=b"before", headers=()))
        async with _frozen(private_kafka):
            held = await producer.enqueue(topic, [KafkaRecord(key=b"k", value=b"held", headers=())])
            with pytest.raises(KafkaError):  # no metadata comes for it: the send fails, the producer is replaced
                await producer.enqueue(f"{topic}-missing", [KafkaRecord(key=b"k", value=b"x", headers=())])
            async with asyncio.timeout(60):  # not for ever
                with pytest.raises(KafkaError):  # the old one closed; a new one cannot start while frozen
                    await producer.enqueue(topic, [KafkaRecord(key=b"k", value=b"refused", headers=())])
                with pytest.raises(KafkaTimeoutError):
                    await held
        await producer.send_record(topic, KafkaRecord(key=b"k", value=b"after", headers=()))
    finally:
        await producer.stop()
    values = [record.value async for record in records_to_end(settings, topic)]
    assert b"refused" not in values
    assert values[0] == b"before"
    assert values[-1] == b"after"


async def test_a_caller_with_batches_unacknowledged_sends_nothing_through_a_replaced_producer(
    private_kafka: KafkaNode,
) -> None:
    """The outbox relay keeps batches in flight. Within one idempotent producer a failed batch takes every later
    one to its partition with it, so order holds; a batch sent through the fresh producer that replaced a failed
    one could land before an earlier batch sent again. So a caller that names its generation is refused instead."""
    settings, topic = await _one_partition(private_kafka)
    producer = EventProducer(settings, client_id="test-generation")
    await producer.start()
    try:
        generation = await producer.ready()
        first = await producer.enqueue(
            topic, [KafkaRecord(key=b"k", value=b"first", headers=())], generation=generation
        )
        with pytest.raises(KafkaError):  # a topic that does not exist: the send fails, the producer is to be replaced
            await producer.enqueue(f"{topic}-missing", [KafkaRecord(key=b"k", value=b"x", headers=())])
        with pytest.raises(ProducerReplacedError):
            await producer.enqueue(topic, [KafkaRecord(key=b"k", value=b"second", headers=())], generation=generation)
        await first
        assert await producer.ready() == generation + 1
        await producer.send_record(topic, KafkaRecord(key=b"k", value=b"third", headers=()))
    finally:
        await producer.stop()
    assert [record.value async for record in records_to_end(settings, topic)] == [b"first", b"third"]


async def _one_partition(broker: KafkaNode) -> tuple[KafkaSettings, str]:
    """Settings for ``broker`` with a short request timeout, and a topic of one partition of the test's own on it."""
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=2_000)
    topic = f"test-producer-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [TopicSpec(name=topic, key="k", partitions=1, description="test")])
    return settings, topic
