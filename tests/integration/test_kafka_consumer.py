"""Events through the real Kafka broker into the inbox consumer: headers and key intact, the offset
committed only after the database transaction, duplicates made harmless, bad records dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg.exceptions
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import sample_event
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.events import CloudEvent, KafkaRecord, encode
from timpora.common.events.payloads import Contract
from timpora.common.kafka.admin import committed_offsets, ensure_topics, topic_partitions
from timpora.common.kafka.broker import client_options, make_broker
from timpora.common.kafka.consumer import (
    ConsumedRecord,
    InboxConsumer,
    KafkaDeadLetterSink,
    PermanentEventError,
    RetryPolicy,
    subscribe,
)
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.sharing.models import inbox

WAIT_S = 30.0


@dataclass
class Recorder:
    """A handler that records what it saw, and fails on demand the way a real one could."""

    seen: list[CloudEvent[Contract]] = field(default_factory=list)
    transient_failures: dict[str, int] = field(default_factory=dict)
    #: Failures as asyncpg raises them when its connection goes (work done on asyncpg directly: COPY, batches).
    lost_connections: dict[str, int] = field(default_factory=dict)
    buggy_subjects: set[str] = field(default_factory=set)
    poison_subjects: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: CloudEvent[Contract], session: AsyncSession) -> None:
        await session.execute(select(1))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if event.subject in self.poison_subjects:
            raise PermanentEventError("the handler refuses this foreigner")
        subject = event.subject or ""
        if subject in self.buggy_subjects:
            raise KeyError("a handler bug that this event triggers")
        if self.transient_failures.get(subject, 0) > 0:
            self.transient_failures[subject] -= 1
            raise ConnectionResetError
        if self.lost_connections.get(subject, 0) > 0:
            self.lost_connections[subject] -= 1
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        self.seen.append(event)


@dataclass
class Harness:
    topic: str
    dead_letter_topic: str
    group_id: str
    recorder: Recorder
    consumer: InboxConsumer
    kafka: KafkaSettings
    publish: Callable[[CloudEvent[Contract]], Awaitable[None]]
    publish_raw: Callable[[bytes, bytes | None, dict[str, str]], Awaitable[None]]
    sessions: Callable[[], AsyncSession]
    broker: KafkaBroker


async def _wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(params=[None, 50], ids=["one-by-one", "batches"])
async def harness(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    # Every behaviour holds alike whether records are applied one by one or many to a transaction.
    async with _running(kafka_settings, database_settings, batch_size=request.param) as running:
        yield running


@contextlib.asynccontextmanager
async def _running(
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    *,
    batch_size: int | None,
    streams: int = 1,
) -> AsyncIterator[Harness]:
    run = uuid.uuid4().hex[:8]
    catalog = kafka_settings.catalog
    topic, dead_letters = catalog.registry_events.name, catalog.sharing_dead_letters.name
    await ensure_topics(kafka_settings, catalog.static)
    engine = make_engine(database_settings["sharing"], application_name="test", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    sessions = make_session_factory(engine)
    broker = make_broker(kafka_settings, client_id=f"test-{run}")
    producer = EventProducer(kafka_settings, client_id=f"test-{run}")
    await producer.start()
    recorder = Recorder()
    consumer = InboxConsumer(
        name=f"test-{run}",
        service="test",
        session_factory=sessions,
        inbox=inbox,
        handler=recorder,
        dead_letters=KafkaDeadLetterSink(producer, dead_letters),
        retry=RetryPolicy(max_attempts=3, first_delay_s=0.01),
    )
    group_id = catalog.consumer_group("sharing-projections")
    subscribe(broker, consumer, topic=topic, group_id=group_id, batch_size=batch_size, streams=streams)
    await broker.start()

    async def publish(event: CloudEvent[Contract]) -> None:
        await producer.publish(topic, event)

    async def publish_raw(value: bytes, key: bytes | None, headers: dict[str, str]) -> None:
        await broker.publish(value, topic, key=key, headers=headers)

    try:
        yield Harness(
            topic, dead_letters, group_id, recorder, consumer, kafka_settings, publish, publish_raw, sessions, broker
        )
    finally:
        await broker.stop()
        await producer.stop()
        await engine.dispose()


async def _inbox_rows(harness: Harness) -> int:
    async with harness.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == harness.consumer.name)
        )
        return int(count or 0)


async def _read_all(kafka: KafkaSettings, topic: str, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
    reader = AIOKafkaConsumer(topic, **client_options(kafka), auto_offset_reset="earliest", group_id=None)
    try:
        await reader.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=500)
            records.extend(record for partition_records in batch.values() for record in partition_records)
        return records
    finally:
        await reader.stop()


async def test_an_event_round_trips_with_headers_key_and_a_commit_after_processing(harness: Harness) -> None:
    event = sample_event()
    await harness.publish(event)

    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "the inbox row")
    assert harness.recorder.seen == [event]

    (raw,) = await _read_all(harness.kafka, harness.topic, 1)
    headers = {k: v.decode() for k, v in raw.headers}
    assert raw.key == str(event.subject).encode()
    assert headers["ce_id"] == event.id
    assert headers["ce_type"] == event.type
    assert headers["ce_subject"] == event.subject

    partition = TopicPartition(harness.topic, raw.partition)

    async def committed_past_it() -> bool:
        offsets = await committed_offsets(harness.kafka, harness.group_id)
        return bool(offsets.get(partition, -1) == raw.offset + 1)

    await _wait_for(committed_past_it, "the consumer's commit")


async def _inbox_rows_equal(harness: Harness, expected: int) -> bool:
    return await _inbox_rows(harness) == expected


@pytest.mark.parametrize("copies", [2, 3])
async def test_the_same_event_delivered_several_times_is_applied_once(harness: Harness, copies: int) -> None:
    event = sample_event()
    for _ in range(copies):
        await harness.publish(event)
    marker = sample_event()
    await harness.publish(marker)

    await _wait_for(lambda: _saw(harness, marker), "the marker event")
    await _wait_for(lambda: _inbox_rows_equal(harness, 2), "the marker's transaction committed")
    assert [seen.id for seen in harness.recorder.seen].count(event.id) == 1


async def _saw(harness: Harness, event: CloudEvent[Contract]) -> bool:
    return any(seen.id == event.id for seen in harness.recorder.seen)


async def test_a_malformed_record_is_dead_lettered_with_its_reason_and_later_events_still_flow(
    harness: Harness,
) -> None:
    key = uuid.uuid4().bytes.hex().encode()
    attributes = {"ce_source": "/x", "ce_specversion": "1.0", "ce_time": "2026-11-29T00:00:00Z"}
    await harness.publish_raw(
        b"{not json", key, attributes | {"ce_id": "bad-1", "ce_type": "id.timpora.permit.issued.v1"}
    )
    await harness.publish_raw(b"{}", key, attributes | {"ce_id": "bad-2", "ce_type": "id.timpora.nope.v1"})
    good = sample_event()
    await harness.publish(good)

    await _wait_for(lambda: _saw(harness, good), "the event after the bad ones")
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 2)
    reasons = {dict(record.headers)["ce_id"].decode(): dict(record.headers)["dlq_reason"].decode() for record in dead}
    assert reasons["bad-1"].startswith("value is not JSON")
    assert reasons["bad-2"] == "unknown event type 'id.timpora.nope.v1'"
    first = dict(dead[0].headers)
    assert first["dlq_source_topic"] == harness.topic.encode()
    assert first["dlq_consumer"] == harness.consumer.name.encode()
    assert dead[0].value == b"{not json"
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "the good event's transaction committed")


async def test_a_record_that_says_it_is_json_and_is_not_is_dead_lettered_and_its_partition_flows_on(
    harness: Harness,
) -> None:
    """FastStream would parse a value whose content-type says JSON itself, before our handler, and fail on it every
    time it was delivered: the partition stuck behind it for good. The subscriber leaves the value to ``decode``."""
    good = sample_event()
    # The same key as the event after it: the same partition, behind it.
    key = str(good.subject).encode()
    attributes = {"ce_source": "/x", "ce_specversion": "1.0", "ce_time": "2026-11-29T00:00:00Z"}
    headers = attributes | {"ce_id": f"bad-json-{uuid.uuid4().hex[:8]}", "ce_type": "id.timpora.permit.issued.v1"}
    await harness.publish_raw(b"{not json", key, headers | {"content-type": "application/json"})
    await harness.publish(good)

    await _wait_for(lambda: _saw(harness, good), "the event behind the record that is not JSON")
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 1)
    reasons = {dict(record.headers)["ce_id"].decode(): dict(record.headers)["dlq_reason"].decode() for record in dead}
    assert reasons[headers["ce_id"]].startswith("value is not JSON")


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        pytest.param(b"\xff\xfe not text", "header 'ce_subject' is not UTF-8", id="not-utf-8"),
        pytest.param(None, "header 'ce_subject' has no value", id="no-value"),
    ],
)
async def test_a_record_with_a_header_that_is_not_text_is_dead_lettered_and_its_partition_flows_on(
    harness: Harness, subject: bytes | None, reason: str
) -> None:
    """FastStream reads every header as UTF-8 before our handler: one that is not (or has no value) failed there at
    every delivery, the partition stuck behind it. The subscriber hands the record on as it came, and ``decode``
    dead-letters it, where before a header with no value passed as an empty subject."""
    good = sample_event()
    bad_id = f"bad-header-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**client_options(harness.kafka))
    await producer.start()
    try:
        # A valid event but for its subject header. The same key as the event after it: the same partition, behind it.
        valid = encode(sample_event())
        kept = [(name, value) for name, value in valid.headers if name not in {"ce_id", "ce_subject"}]
        headers: list[tuple[str, bytes | None]] = [*kept, ("ce_id", bad_id.encode()), ("ce_subject", subject)]
        await producer.send_and_wait(harness.topic, valid.value, key=str(good.subject).encode(), headers=headers)
    finally:
        await producer.stop()
    await harness.publish(good)

    await _wait_for(lambda: _saw(harness, good), "the event behind the record whose header is not text")
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 1)
    reasons = {dict(record.headers)["ce_id"].decode(): dict(record.headers)["dlq_reason"].decode() for record in dead}
    assert reasons[bad_id] == reason
    assert not any(seen.id == bad_id for seen in harness.recorder.seen)


async def test_a_reply_to_header_is_ignored_and_nothing_is_sent_where_it_points(harness: Harness) -> None:
    """FastStream answers a record carrying ``reply_to`` by publishing the handler's result to the topic it names,
    after the transaction: to a topic that does not exist that failed at every delivery (the partition stuck), and to
    one that does it wrote a record past every gate. The subscribers never reply."""
    first, second, after = sample_event(), sample_event(), sample_event()
    nowhere = f"{harness.topic}.no-such-topic"
    elsewhere = harness.dead_letter_topic
    before = await _records_in(harness.kafka, elsewhere)

    async def publish(event: CloudEvent[Contract], key: bytes | None, extra: dict[str, str]) -> None:
        record = encode(event)
        headers = {name: value.decode() for name, value in record.headers}
        await harness.publish_raw(record.value, key, headers | extra)

    await publish(first, encode(first).key, {"reply_to": nowhere})
    await publish(second, encode(second).key, {"reply_to": elsewhere})
    await publish(after, encode(first).key, {})  # the same key as the first: its partition, behind it

    await _wait_for(lambda: _saw(harness, after), "the event behind the one asking for a reply")
    await _wait_for(lambda: _inbox_rows_equal(harness, 3), "all three transactions committed")
    assert await _saw(harness, first)
    assert await _saw(harness, second)
    assert await _records_in(harness.kafka, elsewhere) == before


async def test_a_transient_failure_is_retried_then_applied_once(harness: Harness) -> None:
    event = sample_event()
    harness.recorder.transient_failures[str(event.subject)] = 2

    await harness.publish(event)

    await _wait_for(lambda: _saw(harness, event), "the retried event")
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "its transaction committed")


async def test_a_failure_that_outlasts_the_retries_is_dead_lettered_and_nothing_is_written(harness: Harness) -> None:
    failing, after = sample_event(), sample_event()
    harness.recorder.buggy_subjects.add(str(failing.subject))

    await harness.publish(failing)
    await harness.publish(after)

    await _wait_for(lambda: _saw(harness, after), "the event after the failing one")
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 1)
    assert dict(dead[0].headers)["dlq_reason"] == b"failed 3 times; last error KeyError"
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "the later event's transaction committed")


async def test_a_permanent_error_is_dead_lettered_at_once(harness: Harness) -> None:
    poison = sample_event()
    harness.recorder.poison_subjects.add(poison.subject or "")

    await harness.publish(poison)
    after = sample_event()
    await harness.publish(after)

    await _wait_for(lambda: _saw(harness, after), "the event after the poison one")
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 1)
    assert dict(dead[0].headers)["dlq_reason"] == b"the handler refuses this foreigner"


async def test_the_offset_is_not_committed_while_the_transaction_is_still_open(harness: Harness) -> None:
    harness.recorder.gate = asyncio.Event()
    event = sample_event()
    await harness.publish(event)
    await asyncio.wait_for(harness.recorder.entered.wait(), WAIT_S)

    # The handler is inside its transaction: neither the inbox row nor the offset may be visible yet.
    await asyncio.sleep(1.0)
    during = await committed_offsets(harness.kafka, harness.group_id)
    rows_during = await _inbox_rows(harness)
    harness.recorder.gate.set()
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "the inbox row")
    (raw,) = await _read_all(harness.kafka, harness.topic, 1)
    partition = TopicPartition(harness.topic, raw.partition)

    async def committed_past_it() -> bool:
        return (await committed_offsets(harness.kafka, harness.group_id)).get(partition, -1) == raw.offset + 1

    assert rows_during == 0
    assert during.get(partition, -1) <= raw.offset
    await _wait_for(committed_past_it, "the commit after the transaction")


async def test_a_database_outage_longer_than_the_retries_redelivers_instead_of_dead_lettering(harness: Harness) -> None:
    event = sample_event()
    # Five connection failures outlast one round of three attempts: the record goes back to Kafka and
    # comes again; nothing is dead-lettered, and it is applied once.
    harness.recorder.transient_failures[str(event.subject)] = 5

    await harness.publish(event)

    await _wait_for(lambda: _saw(harness, event), "the event after the outage")
    # Seen by the handler inside the transaction; its inbox row is there once that commits.
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "its transaction committed")
    assert await _records_in(harness.kafka, harness.dead_letter_topic) == 0


async def test_a_connection_lost_under_asyncpg_is_an_outage_not_the_events_fault(harness: Harness) -> None:
    event = sample_event()
    harness.recorder.lost_connections[str(event.subject)] = 5

    await harness.publish(event)

    await _wait_for(lambda: _saw(harness, event), "the event after the lost connections")
    await _wait_for(lambda: _inbox_rows_equal(harness, 1), "its transaction committed")
    assert await _records_in(harness.kafka, harness.dead_letter_topic) == 0


async def _records_in(kafka: KafkaSettings, topic: str) -> int:
    reader = AIOKafkaConsumer(**client_options(kafka), group_id=None)
    try:
        await reader.start()
        partition = TopicPartition(topic, 0)
        offsets = await reader.end_offsets([partition])
        return int(offsets[partition])
    finally:
        await reader.stop()


async def test_a_batch_with_a_bad_event_is_redone_one_by_one(harness: Harness) -> None:
    good, poison, malformed_key = sample_event(), sample_event(), b"malformed"
    harness.recorder.poison_subjects.add(poison.subject or "")

    def consumed(record: KafkaRecord, offset: int) -> ConsumedRecord:
        return ConsumedRecord(topic=harness.topic, partition=0, offset=offset, record=record)

    batch = [
        consumed(encode(good), 1),
        consumed(encode(good), 2),  # the same event twice in one batch
        consumed(encode(poison), 3),
        consumed(KafkaRecord(key=malformed_key, value=b"{", headers=()), 4),
    ]
    outcomes = await harness.consumer.consume_batch(batch)

    assert sorted(outcome.value for outcome in outcomes) == ["dead_lettered", "dead_lettered", "duplicate", "processed"]
    # Seen in the batch's transaction, which the poison event rolled back, then again on its own:
    # its effects and its inbox row committed once.
    assert [seen.id for seen in harness.recorder.seen] == [good.id, good.id]
    assert await _inbox_rows(harness) == 1
    dead = await _read_all(harness.kafka, harness.dead_letter_topic, 2)
    assert {record.key for record in dead} == {malformed_key, (poison.subject or "").encode()}


@pytest.mark.parametrize("streams", [0, -1])
def test_subscribing_fewer_than_one_stream_is_refused(streams: int) -> None:
    """Zero members would subscribe nothing at all, and the service would start and never consume."""
    broker = KafkaBroker("localhost:1")
    consumer = InboxConsumer(
        name="nobody",
        service="test",
        session_factory=None,  # type: ignore[arg-type]
        inbox=inbox,
        handler=Recorder(),
        dead_letters=None,  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="streams must be at least 1"):
        subscribe(broker, consumer, topic="t", group_id="g", streams=streams)
    assert not broker.subscribers


async def test_two_streams_in_one_process_share_the_partitions_and_apply_every_event_once(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    """``streams=2``: two members of the group in one process, each with partitions of its own (one batch is worked
    out while the other's waits on the database), and together every event applied exactly once."""
    async with _running(kafka_settings, database_settings, batch_size=50, streams=2) as running:
        members = running.broker.subscribers
        assert len(members) == 2
        every = set(await topic_partitions(running.kafka, running.topic))

        async def split() -> bool:
            held = [getattr(member, "consumer", None) for member in members]
            first, second = (set() if consumer is None else consumer.assignment() for consumer in held)
            return bool(first) and bool(second) and not first & second and first | second == every

        await _wait_for(split, "the topic's partitions split between the two streams")
        events = [sample_event() for _ in range(60)]
        for event in events:
            await running.publish(event)
        await _wait_for(lambda: _inbox_rows_equal(running, len(events)), "every event applied")
        assert sorted(seen.id for seen in running.recorder.seen) == sorted(event.id for event in events)
