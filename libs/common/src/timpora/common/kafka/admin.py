"""Creates the catalog's topics that are missing, and reads positions and records (for lag, operators and tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError, for_code
from aiokafka.structs import TopicPartition

from timpora.common.kafka.broker import client_options
from timpora.common.settings import KafkaSettings
from timpora.common.topics import TopicSpec

log = logging.getLogger(__name__)


class MissingTopicError(RuntimeError):
    """A topic a service needs is missing and its principal may not create it (another service owns it)."""

    def __init__(self, topic: str, principal: str | None) -> None:
        super().__init__(
            f"topic {topic} does not exist and {principal or 'this client'} may not create it: provision the "
            "namespace ('deploy/local/stack up' or the compose 'kafka-setup' service does) or start its owner first"
        )


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings))


@asynccontextmanager
async def admin_session(settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed when the block ends."""
    admin = admin_client(settings)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


#: Topics asked for in one request.
_CREATED_AT_ONCE = 500


async def _create(
    admin: AIOKafkaAdminClient,
    settings: KafkaSettings,
    missing: list[TopicSpec],
    created: list[str],
) -> None:
    """Creates ``missing``, many at a time: a national register's first start creates about 20,000 agency topics,
    and one request each would take minutes. Appends each created topic's name to ``created`` as it goes."""
    for start in range(0, len(missing), _CREATED_AT_ONCE):
        topics = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.config),
            )
            for spec in missing[start : start + _CREATED_AT_ONCE]
        ]
        # aiokafka returns a topic's error in the response instead of raising it.
        response = await admin.create_topics(topics)
        for name, code, *_ in response.topic_errors:  # type: ignore[attr-defined]
            error = for_code(code) if code else None
            if error is None:
                created.append(name)
            elif error is TopicAuthorizationFailedError:
                raise MissingTopicError(name, settings.sasl_username)
            elif error is not TopicAlreadyExistsError:  # another instance created it between listing and asking
                raise error(f"could not create topic {name}")


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Creates the topics in ``specs`` that do not exist yet, each on as many brokers as its spec says; returns the
    names it created."""
    wanted = {spec.name: spec for spec in specs}
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in existing]
        created: list[str] = []
        try:
            await _create(admin, settings, missing, created)
        finally:
            # Said even when a later request fails: what exists now, whatever stopped the rest.
            if created:
                log.info("created Kafka topics", extra={"count": len(created), "topics": created[:20]})
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


async def describe_partitions(settings: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    """Each partition of ``topic`` as the cluster describes it: ``partition``, ``leader``, ``replicas``, ``isr``."""
    admin = admin_client(settings)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return list(description["partitions"])


@asynccontextmanager
async def started_consumer(
    settings: KafkaSettings,
    *topics: str,
    **options: Any,  # noqa: ANN401 - AIOKafkaConsumer's own options
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of ``settings``' cluster, started, and stopped however the block ends: also when its start fails
    half-way (a consumer never stopped leaves its connections and tasks behind)."""
    consumer = AIOKafkaConsumer(*topics, **client_options(settings), **options)
    try:
        await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def topic_partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, from the cluster (a consumer's own metadata may not list it yet)."""
    return [TopicPartition(topic, partition["partition"]) for partition in await describe_partitions(settings, topic)]


async def end_offsets(settings: KafkaSettings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    async with started_consumer(settings, enable_auto_commit=False) as consumer:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends


async def consumer_lag(settings: KafkaSettings, group_id: str, topic: str) -> int:
    """Records of ``topic`` that ``group_id`` has not committed yet, over all partitions."""
    partitions = await topic_partitions(settings, topic)
    ends = await end_offsets(settings, partitions)
    committed = await committed_offsets(settings, group_id)
    return sum(max(0, end - max(committed.get(partition, 0), 0)) for partition, end in ends.items())


async def records_to_end(settings: KafkaSettings, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from its beginning to its end as of the call, each partition's in order (a replay:
    a rebuild, a benchmark's check). No consumer group: a fresh assignment starts at the earliest record, and no
    offsets are left behind."""
    async with started_consumer(
        settings, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    ) as consumer:
        partitions = await topic_partitions(settings, topic)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {partition for partition in partitions if ends[partition] > 0}
        while remaining:
            for partition, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                for record in records:
                    if record.offset < ends[partition]:
                        yield record
                if await consumer.position(partition) >= ends[partition]:
                    remaining.discard(partition)


async def latest_records(
    settings: KafkaSettings, topic: str, *, limit: int, timeout_s: float = 5.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Up to the last ``limit`` records of each partition of ``topic``, oldest first (an operator's look)."""
    partitions = await topic_partitions(settings, topic)
    if not partitions:
        return []  # no such topic (yet): nothing to read
    async with started_consumer(settings, enable_auto_commit=False) as consumer:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        wanted = {}
        for partition in partitions:
            first = max(starts[partition], ends[partition] - limit)
            if first < ends[partition]:
                consumer.seek(partition, first)
                wanted[partition] = ends[partition]
        found: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while wanted and asyncio.get_running_loop().time() < deadline:
            for partition, records in (await consumer.getmany(*wanted, timeout_ms=200)).items():
                found.extend(record for record in records if record.offset < wanted[partition])
                if records and records[-1].offset + 1 >= wanted[partition]:
                    del wanted[partition]
        return sorted(found, key=lambda record: (record.timestamp, record.partition, record.offset))
