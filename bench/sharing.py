"""The sharing service's projection rebuild against a raw loop: fetch the same events from Kafka and
upsert the same final rows with asyncpg."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import Result, timed
from tests.support.factories import sample_event
from timpora.common import register
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.broker import client_options
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.common.topics import TopicSpec
from timpora.sharing import rebuild

TODAY = date(2026, 11, 29)
VILLAGES = ("35.26.05.2003", "35.26.05.2004", "35.27.01.2001")


async def sharing_engine(admin_url: str) -> AsyncEngine:
    urls = await fresh_database(admin_url, "timpora_bench_sharing", role_prefix="timpora_bench")
    engine = make_engine(DatabaseSettings(url=urls["sharing"], pool_size=4), application_name="bench", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    return engine


async def _publish(kafka: KafkaSettings, topic: str, count: int) -> None:
    producer = EventProducer(kafka, client_id="bench-sharing")
    await producer.start()
    try:
        for start in range(0, count, 2000):
            batch = [sample_event(jurisdiction=VILLAGES[i % 3]) for i in range(start, min(count, start + 2000))]
            await producer.publish_many(topic, batch)
    finally:
        await producer.stop()


async def bench_rebuild(engine: AsyncEngine, kafka: KafkaSettings, count: int) -> Result:
    topic = f"bench.history.{uuid.uuid4().hex[:6]}"
    await ensure_topics(kafka, [TopicSpec(topic, "foreigner id", 6, "bench")])
    await _publish(kafka, topic, count)
    agreement = register.current(register.DEFAULT_REGISTER).agreements["pemkab-bangkalan"]
    sessions = make_session_factory(engine)

    async def ours() -> None:
        await rebuild.rebuild(sessions, kafka, topic, agreement, datetime(2026, 11, 29, 5, 0, tzinfo=UTC))

    ours_rate = await timed(count, ours)
    allowed = list(agreement.fields)

    async def raw() -> None:
        consumer = AIOKafkaConsumer(topic, **client_options(kafka), group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        rows: dict[str, tuple[object, ...]] = {}
        try:
            while len(rows) < count:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    for record in records:
                        data = json.loads(record.value or b"{}")
                        person = data["foreigner"]
                        residence = person.get("residence") or {}
                        flat = {"full_name": person["full_name"], "nationality": person["nationality"]}
                        flat |= {"residence_village_code": residence.get("village_code")}
                        kept = {name: flat.get(name) for name in allowed}
                        rows[person["foreigner_id"]] = (
                            "raw-agency",
                            uuid.UUID(person["foreigner_id"]),
                            person["version"],
                            1,
                            True,
                            json.dumps(kept),
                        )
        finally:
            await consumer.stop()
        async with engine.begin() as connection:
            driver = await driver_connection(connection)
            await driver.execute("CREATE TEMP TABLE raw_rows (LIKE projections INCLUDING DEFAULTS) ON COMMIT DROP")
            await driver.copy_records_to_table(
                "raw_rows",
                records=list(rows.values()),
                columns=["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record"],
            )
            await driver.execute(
                "INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record) "
                "SELECT agency_id, foreigner_id, version, agreement_version, visible, record FROM raw_rows "
                "ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET record = excluded.record"
            )

    raw_rate = await timed(count, raw)
    return Result(
        name=f"projection rebuild of {count:,} events (one agency, full snapshots, read from the start of the topic)",
        unit="events/s",
        ours=ours_rate,
        raw=raw_rate,
        baseline="raw aiokafka fetch + json.loads + hand-picked fields + one asyncpg COPY and merge of the same rows",
        note="ours decodes and validates every CloudEvent (pydantic) before redacting it; target >= 0.5 and 25,000/s",
    )


async def run_all(admin_url: str, kafka: KafkaSettings, *, events: int) -> list[Result]:
    engine = await sharing_engine(admin_url)
    try:
        return [await bench_rebuild(engine, kafka, events)]
    finally:
        await engine.dispose()
