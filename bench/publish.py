"""Publishing CloudEvents: timpora's EventProducer against a raw aiokafka producer."""

from __future__ import annotations

import asyncio
import statistics
import uuid

from aiokafka import AIOKafkaProducer

from bench.common import Digest, Result, same_records, timed, topic_digest
from tests.support.factories import sample_event
from timpora.common.events import KafkaRecord, encode
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.broker import client_options
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import KafkaSettings
from timpora.common.topics import TopicSpec


async def bench_publish(kafka: KafkaSettings, count: int, window: int, repeats: int) -> Result:
    """CloudEvents through timpora's producer (encode + send) vs raw aiokafka sending pre-encoded records.

    Both idempotent with acks=all and the same number in flight; the two alternate ``repeats`` times
    and the median of each is reported, so a noisy moment hurts neither side alone.
    """
    # A topic each, alike: what each side wrote is read back and compared once the timing is over.
    ours_topic, raw_topic = (f"bench.publish.{side}.{uuid.uuid4().hex[:8]}" for side in ("ours", "raw"))
    await ensure_topics(
        kafka,
        [TopicSpec(ours_topic, "foreigner id", 6, "benchmark"), TopicSpec(raw_topic, "foreigner id", 6, "benchmark")],
    )
    events = [sample_event() for _ in range(count)]
    records: list[KafkaRecord] = [encode(event) for event in events]
    producer = EventProducer(kafka, client_id="bench")
    raw_producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    await raw_producer.start()

    async def ours() -> None:
        for start in range(0, count, window):
            await producer.publish_many(ours_topic, events[start : start + window])

    async def raw() -> None:
        for start in range(0, count, window):
            futures = [
                await raw_producer.send(raw_topic, record.value, key=record.key, headers=list(record.headers))
                for record in records[start : start + window]
            ]
            await asyncio.gather(*futures)

    ours_rates, raw_rates = [], []
    try:
        for _ in range(repeats):
            ours_rates.append(await timed(count, ours))
            raw_rates.append(await timed(count, raw))
    finally:
        await producer.stop()
        await raw_producer.stop()
    # Each side sent every record once a round, so each topic holds them ``repeats`` times over.
    expected = Digest.of((record.key, record.value, record.headers) for record in records) * repeats
    same_records(
        "publish", expected, ours=await topic_digest(kafka, ours_topic), raw=await topic_digest(kafka, raw_topic)
    )
    return Result(
        name=f"publish {count} CloudEvents (encode + send, acks=all, {window} in flight, median of {repeats})",
        unit="events/s",
        ours=statistics.median(ours_rates),
        raw=statistics.median(raw_rates),
        baseline="raw aiokafka producer sending the same records, pre-encoded",
    )
