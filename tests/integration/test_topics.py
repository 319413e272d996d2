"""Creating a country's topics on the real broker: many in one request, each with the partitions it is given."""

from __future__ import annotations

from timpora.common.kafka.admin import admin_client, ensure_topics
from timpora.common.settings import KafkaSettings


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
