"""Creates the catalog's topics that are missing, and reads consumer positions (for lag and tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from timpora.common.kafka.broker import client_options
from timpora.common.settings import KafkaSettings
from timpora.common.topics import TopicSpec

log = logging.getLogger(__name__)


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings))


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], *, replication_factor: int = 1
) -> list[str]:
    """Creates the topics in ``specs`` that do not exist yet; returns the names it created."""
    wanted = {spec.name: spec for spec in specs}
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in existing]
        created: list[str] = []
        for spec in missing:
            topic = NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=dict(spec.config),
            )
            try:
                await admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                # Another instance created it between our listing and our request.
                pass
        if created:
            log.info("created Kafka topics", extra={"topics": created})
        return created
    finally:
        await admin.close()


async def committed_offsets(settings: KafkaSettings, group_id: str) -> dict[TopicPartition, int]:
    """The offsets ``group_id`` has committed, per partition."""
    admin = admin_client(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
        return {partition: metadata.offset for partition, metadata in offsets.items()}
    finally:
        await admin.close()


async def topic_partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, from the cluster (a consumer's own metadata may not list it yet)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, partition["partition"]) for partition in description["partitions"]]
