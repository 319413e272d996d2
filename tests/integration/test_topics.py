"""Creating a country's topics on the real broker: many in one request, each with the partitions it is given; and
what the broker stamps on their records."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaProducer

from timpora.common.kafka.admin import admin_client, ensure_topics
from timpora.common.kafka.broker import client_options
from timpora.common.settings import KafkaSettings
from timpora.common.topics import TopicSpec

_DAY_MS = 24 * 60 * 60 * 1000


async def test_topics_are_created_many_at_a_time_each_with_its_own_partitions(kafka_settings: KafkaSettings) -> None:
    catalog = kafka_settings.catalog
    # More than one request's worth; one agency sized for a national member's volume.
    specs = [catalog.agency_events(f"agency-{number:04d}", 3 if number == 7 else 1) for number in range(520)]

    created = await ensure_topics(kafka_settings, specs)
    again = await ensure_topics(kafka_settings, specs)

    admin = admin_client(kafka_settings)
    await admin.start()
    try:
        described = {
            topic["topic"]: len(topic["partitions"])
            for topic in await admin.describe_topics([specs[6].name, specs[7].name])
        }
    finally:
        await admin.close()
    assert sorted(created) == sorted(spec.name for spec in specs)
    assert again == []
    assert described == {specs[6].name: 1, specs[7].name: 3}


async def test_a_record_stamped_a_day_ahead_by_its_producers_clock_is_taken_with_the_brokers_time(
    kafka_settings: KafkaSettings,
) -> None:
    """A service whose host clock jumped a day forward still publishes: Kafka 4 refuses a record its producer
    stamped more than an hour ahead, so the broker stamps the records itself, on a topic the catalog creates and on
    one created before the catalog said so (the broker's default)."""
    catalog = kafka_settings.catalog
    made_now = catalog.agency_events("clock-ahead")
    made_before = TopicSpec(name=f"{catalog.namespace}.made-before.v1", key="", partitions=1, description="")
    await ensure_topics(kafka_settings, [made_now, made_before])
    producer = AIOKafkaProducer(**client_options(kafka_settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        stamped = {}
        for spec in (made_now, made_before):
            ahead = int(time.time() * 1000) + _DAY_MS
            metadata = await producer.send_and_wait(spec.name, b"event", key=b"person", timestamp_ms=ahead)
            stamped[spec.name] = (metadata.timestamp_type, ahead - metadata.timestamp)
    finally:
        await producer.stop()
    # The broker's append time (type 1), this machine's clock: a day behind the producer's, give or take a minute.
    assert all(kind == 1 and abs(behind - _DAY_MS) < 60_000 for kind, behind in stamped.values()), stamped
