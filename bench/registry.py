"""The registry's write path: bulk import against raw COPY, the outbox relay against a raw aiokafka
producer, and commit-to-consumer latency at a steady rate."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import Digest, Result, maintain, same_records, timed, topic_digest
from tests.support.factories import sample_event
from timpora.common.clock import SystemClock
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine
from timpora.common.db.migrations import upgrade
from timpora.common.events.envelope import attribute_headers
from timpora.common.kafka.admin import ensure_topics, started_consumer
from timpora.common.kafka.broker import client_options
from timpora.common.kafka.producer import EventProducer
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.settings import DatabaseSettings, KafkaSettings, RelaySettings
from timpora.common.topics import TopicSpec
from timpora.registry.bulk.generator import generate
from timpora.registry.bulk.importer import _FOREIGNER_COLUMNS, Importer, Summary, _Pending
from timpora.registry.bulk.records import parse

TODAY = date(2026, 11, 29)
BATCH = 5000
#: Where the importer addresses its outbox rows; bench_relay re-addresses them to a topic of its own.
TOPIC = "bench.registry.import"


async def registry_engine(admin_url: str) -> AsyncEngine:
    """A fresh ``timpora_bench`` database, migrated: benchmarks never touch a dev stack's data."""
    urls = await fresh_database(admin_url, "timpora_bench", role_prefix="timpora_bench")
    engine = make_engine(
        DatabaseSettings(url=urls["registry"], pool_size=4), application_name="bench", schema="registry"
    )
    await upgrade(engine, "timpora.registry", schema="registry")
    return engine


def _raw_foreigner_rows(count: int) -> Iterator[list[tuple[Any, ...]]]:
    """The people ours imports (the same file, seed 7) as rows of ``registry.foreigners``: only the passport number
    is the baseline's own ("R…": the registry holds one person a passport), and the sponsor and permit, rows of
    tables it does not write, are left out."""
    now = datetime.now(UTC)
    batch: list[tuple[Any, ...]] = []
    for index, row in enumerate(generate(count, seed=7, today=TODAY)):
        batch.append(
            (
                uuid.uuid4(), 1, row["full_name"], row["sex"], date.fromisoformat(row["date_of_birth"]),
                row["nationality"],
                f"R{index:010d}", row["passport_country"], date.fromisoformat(row["passport_expires_on"]),
                row["occupation"], None, "present", row["arrival_port"], date.fromisoformat(row["arrived_on"]),
                row["visa_index"] or None, row["visa_number"] or None,
                row["residence_address"], row["residence_village_code"], date.fromisoformat(row["residence_since"]),
                None, row["residence_village_code"], now, now, "bench", "bench",
            )
        )  # fmt: skip
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


#: How many people each side of the one-table baseline holds, and a digest of what both store of a person alike:
#: every column the raw COPY writes but the id, the passport number (the baseline's own), the sponsor and current
#: permit (ids of rows only ours writes) and who wrote the row when. Ours' passport numbers begin with the
#: nationality's first letter, and no nationality's is R; the six-table COPY adds its people only afterwards.
_PEOPLE = """
    SELECT count(*) FILTER (WHERE NOT raw) AS ours, count(*) FILTER (WHERE raw) AS raw,
        sum(digest) FILTER (WHERE NOT raw) AS ours_digest, sum(digest) FILTER (WHERE raw) AS raw_digest
    FROM (
        SELECT passport_number LIKE 'R%' AS raw, hashtextextended(ROW(
            version, full_name, sex, date_of_birth, nationality, passport_country, passport_expires_on, occupation,
            presence, arrival_port, arrival_on, visa_index, visa_number, residence_address, residence_village_code,
            residence_since, jurisdiction
        )::text, 0)::numeric AS digest
        FROM foreigners
    ) AS people
"""
#: The rows of each table the import writes.
_ROWS = """
    SELECT (SELECT count(*) FROM foreigners) AS foreigners, (SELECT count(*) FROM permits) AS permits,
        (SELECT count(*) FROM residences) AS residences, (SELECT count(*) FROM movements) AS movements,
        (SELECT count(*) FROM history) AS history, (SELECT count(*) FROM outbox) AS outbox
"""


async def _rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return dict(await (await driver_connection(connection)).fetchrow(_ROWS))


async def _same_people(engine: AsyncEngine, count: int) -> None:
    """Both sides of the one-table baseline hold ``count`` people, the same ones but for their passport numbers."""
    async with engine.connect() as connection:
        found = await (await driver_connection(connection)).fetchrow(_PEOPLE)
    if (found["ours"], found["raw"]) != (count, count):
        raise AssertionError(
            f"bulk import: ours holds {found['ours']:,} people, raw {found['raw']:,}, {count:,} expected"
        )
    if found["ours_digest"] != found["raw_digest"]:
        raise AssertionError("bulk import: the raw COPY holds other people than ours")


async def bench_import(engine: AsyncEngine, count: int, six_table_count: int) -> list[Result]:
    importer = Importer(engine, SystemClock(), import_id="bench", topic=TOPIC, batch_size=BATCH)
    lines = (parse(index, row) for index, row in enumerate(generate(count, seed=7, today=TODAY), start=2))

    async def ours() -> None:
        summary = await importer.run(lines, lambda _line, _reason: None)
        if summary.imported != count:
            raise RuntimeError(f"imported {summary.imported} of {count}")

    ours_rate = await timed(count, ours)
    ours_rows = await _rows(engine)  # before the baselines write theirs
    gc.collect()
    batches = list(_raw_foreigner_rows(count))  # built before the clock starts: the baseline only copies
    gc.freeze()

    async def raw() -> None:
        async with engine.connect() as connection:
            driver = await driver_connection(connection)
            for batch in batches:
                async with driver.transaction():
                    await driver.copy_records_to_table(
                        "foreigners", records=batch, columns=_FOREIGNER_COLUMNS, schema_name="registry"
                    )

    raw_rate = await timed(count, raw)
    batches.clear()
    gc.unfreeze()
    await _same_people(engine, count)
    six_rate, six_rows = await _raw_six_tables(engine, six_table_count)
    # The six-table COPY writes other people (a file of its own, their rows built by the importer), so what compares
    # is the rows a person has in each table.
    for table, rows in six_rows.items():
        if rows * count != ours_rows[table] * six_table_count:
            raise AssertionError(
                f"bulk import: {table} holds {ours_rows[table]:,} rows for ours' {count:,} people, "
                f"{rows:,} for the six-table COPY's {six_table_count:,}"
            )
    name = f"bulk import of {count:,} synthetic records (parse, validate, 6 tables + an event each, {BATCH} a batch)"
    return [
        Result(
            name=name,
            unit="records/s",
            ours=ours_rate,
            raw=raw_rate,
            baseline="raw asyncpg copy_records_to_table of the same people into registry.foreigners",
            note="ours writes foreigners, permits, residences, movements, history and outbox; the baseline one table",
            target=0.2,
        ),
        Result(
            name=name + ", against the same six tables",
            unit="records/s",
            ours=ours_rate,
            raw=six_rate,
            baseline=f"raw COPY of {six_table_count:,} records' rows, built in advance, into the same six tables",
            note="what is left is ours: reading, validating and building the rows and events",
        ),
    ]


async def _raw_six_tables(engine: AsyncEngine, count: int) -> tuple[float, dict[str, int]]:
    """COPY alone of the rows the importer would write, for people it has not seen: rows built untimed. Returns the
    rate and the rows it wrote in each table; its outbox rows are then removed, for the relay drains the import's."""
    builder = Importer(engine, SystemClock(), import_id="bench-raw", topic=TOPIC, batch_size=BATCH)
    prepared = []
    rows = generate(count, seed=8, today=TODAY)
    batch = []
    for index, row in enumerate(rows):
        line = parse(index, row | {"passport_number": f"S{index:010d}", "permit_number": f"SP{index:010d}"})
        if line.record is not None:
            batch.append(_Pending(line.number, line.record))
        if len(batch) == BATCH:
            prepared.append(await builder._prepare(batch, Summary(), lambda _line, _reason: None))  # noqa: SLF001
            batch = []
    if batch:
        prepared.append(await builder._prepare(batch, Summary(), lambda _line, _reason: None))  # noqa: SLF001
    before = await _rows(engine)
    async with engine.connect() as connection:
        last_event = await (await driver_connection(connection)).fetchval("SELECT coalesce(max(id), 0) FROM outbox")
    gc.collect()
    gc.freeze()

    async def copy_all() -> None:
        for rows_of_batch in prepared:
            async with engine.begin() as connection:
                await rows_of_batch.copy(await driver_connection(connection))

    try:
        rate = await timed(count, copy_all)
    finally:
        gc.unfreeze()
    after = await _rows(engine)
    # Left in the outbox, these events would be drained by the relay's benchmark beside the import's ``count``.
    await maintain(engine, "DELETE FROM outbox WHERE id > $1", last_event)
    await maintain(engine, "DELETE FROM outbox_pending WHERE id > $1", last_event)
    return rate, {table: after[table] - before[table] for table in after}


async def bench_relay(engine: AsyncEngine, kafka: KafkaSettings, count: int) -> Result:
    """Drains the ``count`` outbox rows the import left; the baseline sends the same records raw."""
    # Under the benchmark's namespace: the relay publishes its own namespace's rows only.
    ours_topic, raw_topic = (f"{kafka.namespace}.{kind}.{uuid.uuid4().hex[:6]}" for kind in ("relay", "raw"))
    await ensure_topics(
        kafka, [TopicSpec(ours_topic, "foreigner id", 6, "bench"), TopicSpec(raw_topic, "foreigner id", 6, "bench")]
    )
    await maintain(engine, "UPDATE outbox SET topic = $1", ours_topic)  # the import's rows, all still pending
    # The update left a dead copy of every row behind; production rows are written once.
    await maintain(engine, "VACUUM (ANALYZE) outbox")
    gc.collect()
    gc.freeze()  # what the benchmark itself holds is not the relay's garbage to scan
    producer = EventProducer(kafka, client_id="bench-relay")
    await producer.start()
    relay = OutboxRelay(engine, producer, RelaySettings(batch_size=2000), SystemClock(), catalog=kafka.catalog)

    published = 0

    async def ours() -> None:
        nonlocal published
        published = await relay.drain()

    ours_rate = await timed(count, ours)
    await producer.stop()
    async with engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT partition_key, headers::text, payload FROM outbox ORDER BY id"))
        ).all()
    records = [
        (key.encode(), payload.encode(), [(k, v.encode()) for k, v in json.loads(headers).items()])
        for key, headers, payload in rows
    ]
    del rows
    if published != count or len(records) != count:
        raise AssertionError(f"outbox relay: published {published:,} of {len(records):,} rows, {count:,} expected")
    expected = Digest.of(records)
    gc.collect()
    gc.freeze()
    raw_producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await raw_producer.start()

    async def raw() -> None:
        for start in range(0, len(records), 2000):
            futures = [
                await raw_producer.send(raw_topic, value, key=key, headers=headers)
                for key, value, headers in records[start : start + 2000]
            ]
            await asyncio.gather(*futures)

    raw_rate = await timed(len(records), raw)
    await raw_producer.stop()
    records.clear()  # not needed any more: the two topics are read back one record at a time
    same_records(
        "outbox relay",
        expected,
        ours=await topic_digest(kafka, ours_topic),
        raw=await topic_digest(kafka, raw_topic),
    )
    return Result(
        name=f"outbox relay draining {count:,} rows to acknowledged Kafka writes (2,000 a batch)",
        unit="events/s",
        ours=ours_rate,
        raw=raw_rate,
        baseline="raw aiokafka producer (idempotent, acks=all) sending the same records from memory, 2,000 in flight",
        note="ours also reads each batch from PostgreSQL and marks it published in the same transaction",
        target=0.6,
    )


async def _latencies(
    kafka: KafkaSettings, topic: str, send: Callable[[str], Awaitable[None]], rate: int, seconds: float
) -> list[float]:
    """Sends ``rate`` events a second for ``seconds`` with ``send(event_id)``; returns each one's delay in ms."""
    async with started_consumer(kafka, group_id=None, enable_auto_commit=False) as consumer:
        partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        sent: dict[str, float] = {}
        received: dict[str, float] = {}
        loop = asyncio.get_running_loop()

        async def receive() -> None:
            while True:
                for batch in (await consumer.getmany(timeout_ms=100)).values():
                    now = loop.time()
                    for record in batch:
                        received[dict(record.headers)["ce_id"].decode()] = now

        receiver = asyncio.create_task(receive())
        try:
            started = loop.time()
            for index in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, started + index / rate - loop.time()))
                event_id = str(uuid.uuid4())
                await send(event_id)
                sent[event_id] = loop.time()
            deadline = loop.time() + 30
            while len(received) < len(sent) and loop.time() < deadline:  # noqa: ASYNC110 - a dict another task fills
                await asyncio.sleep(0.1)
        finally:
            receiver.cancel()  # before its consumer stops
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
    return [(received[e] - sent[e]) * 1000 for e in sent if e in received]


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def bench_latency(engine: AsyncEngine, kafka: KafkaSettings, rate: int, seconds: float) -> list[Result]:
    """Commit-to-consumer delay through the outbox and a live relay (woken by NOTIFY), at a steady rate."""
    topic = f"{kafka.namespace}.latency.{uuid.uuid4().hex[:6]}"
    await ensure_topics(kafka, [TopicSpec(topic, "foreigner id", 6, "bench")])
    producer = EventProducer(kafka, client_id="bench-latency")
    await producer.start()
    relay = OutboxRelay(
        engine, producer, RelaySettings(batch_size=500, poll_interval_s=2.0), SystemClock(), catalog=kafka.catalog
    )
    running = asyncio.create_task(relay.run())
    template = sample_event()

    async def commit(event_id: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload) "
                    "VALUES (:id, :type, :topic, :key, :headers, :payload)"
                ),
                {
                    "id": event_id,
                    "type": template.type,
                    "topic": topic,
                    "key": template.subject,
                    "headers": json.dumps(attribute_headers(template) | {"ce_id": event_id}),
                    "payload": template.data.model_dump_json(),
                },
            )

    ours = await _latencies(kafka, topic, commit, rate, seconds)
    running.cancel()
    await producer.stop()
    raw_producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await raw_producer.start()
    payload = template.data.model_dump_json().encode()

    async def send(event_id: str) -> None:
        await raw_producer.send_and_wait(topic, payload, key=b"k", headers=[("ce_id", event_id.encode())])

    raw = await _latencies(kafka, topic, send, rate, seconds)
    await raw_producer.stop()
    count = len(ours)
    return [
        Result(
            name=f"commit-to-consumer p99 latency at {rate} events/s for {seconds:.0f} s ({count} events)",
            unit="ms",
            ours=_p99(ours),
            raw=_p99(raw),
            baseline="raw aiokafka send_and_wait straight to Kafka, same consumer (lower is better)",
            note=f"ours p50 {statistics.median(ours):.1f} ms, max {max(ours):.1f} ms; "
            f"raw p50 {statistics.median(raw):.1f} ms",
            lower_is_better=True,
        )
    ]


async def run_all(admin_url: str, kafka: KafkaSettings, *, records: int, rate: int, seconds: float) -> list[Result]:
    engine = await registry_engine(admin_url)
    try:
        results = await bench_import(engine, records, min(records, 200_000))
        results.append(await bench_relay(engine, kafka, records))
        results.extend(await bench_latency(engine, kafka, rate, seconds))
    finally:
        await engine.dispose()
    return results
