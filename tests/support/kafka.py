"""Reading what reached a real Kafka topic, from a point in time on."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from timpora.common.kafka.acls import SERVICES, ServiceName
from timpora.common.kafka.admin import admin_client, started_consumer, topic_partitions
from timpora.common.kafka.provision import Principal, provision
from timpora.common.kafka.security import AclFilter, delete_acls, delete_scram_user, describe_acls
from timpora.common.settings import KafkaSettings


class TopicTail:
    """Every record written to a topic after the tail was opened."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.records: list[ConsumerRecord[bytes, bytes]] = []

    async def collect(
        self, until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool], timeout_s: float = 30.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not until(self.records):
            if loop.time() > deadline:
                raise TimeoutError(f"after {timeout_s}s the tail holds {len(self.records)} records")
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
        return self.records

    def with_key(self, key: str) -> list[ConsumerRecord[bytes, bytes]]:
        return [record for record in self.records if record.key == key.encode()]


@asynccontextmanager
async def tail(kafka: KafkaSettings, topic: str) -> AsyncIterator[TopicTail]:
    async with started_consumer(kafka, enable_auto_commit=False, group_id=None) as consumer:
        partitions = await topic_partitions(kafka, topic)
        if not partitions:
            raise LookupError(f"topic {topic} does not exist")
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        yield TopicTail(consumer)


async def everything_on(kafka: KafkaSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` from its beginning to its end as of now."""
    found: list[ConsumerRecord[bytes, bytes]] = []
    async with started_consumer(kafka, enable_auto_commit=False, group_id=None) as consumer:
        partitions = await topic_partitions(kafka, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for partition in partitions:
            while await consumer.position(partition) < ends[partition]:
                for records in (await consumer.getmany(partition, timeout_ms=500)).values():
                    found.extend(record for record in records if record.offset < ends[partition])
    return found


def new_namespace() -> str:
    """A Kafka namespace of a test's own (see timpora.common.topics)."""
    return f"test-{uuid.uuid4().hex[:12]}"


async def delete_namespace(kafka: KafkaSettings, *, logins: bool = True) -> list[str]:
    """Deletes every topic of ``kafka``'s namespace (a test's); Kafka drops their groups' offsets with them. On a
    locked-down broker the namespace's rules and (unless ``logins`` is false) the logins made for it (services',
    agencies') go too."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        owned = [name for name in await admin.list_topics() if kafka.catalog.owns(name)]
        if owned:
            await admin.delete_topics(owned)
        if kafka.sasl_mechanism is not None:
            await _forget_principals(admin, kafka.namespace, logins=logins)
        return owned
    finally:
        await admin.close()


async def _forget_principals(admin: AIOKafkaAdminClient, namespace: str, *, logins: bool) -> None:
    # Every principal a test makes is named after its namespace: ``<ns>-<service>`` or ``<ns>.agency.<id>``.
    rules = [rule for rule in await describe_acls(admin, AclFilter()) if _of(rule.principal, namespace)]
    await delete_acls(admin, [AclFilter.exactly(rule) for rule in rules])
    if not logins:
        return
    for principal in {rule.principal for rule in rules}:
        await delete_scram_user(admin, principal.removeprefix("User:"))


def _of(principal: str, namespace: str) -> bool:
    return principal.startswith((f"User:{namespace}-", f"User:{namespace}."))


async def service_principals(kafka: KafkaSettings) -> dict[ServiceName, KafkaSettings]:
    """Each service's settings as it runs in production: on a locked-down broker, its own login with only its own
    rules, in ``kafka``'s namespace (made here; gone with the namespace). Elsewhere, ``kafka`` for each."""
    if kafka.sasl_mechanism is None:
        return dict.fromkeys(SERVICES, kafka)
    principals = {service: Principal(f"{kafka.namespace}-{service}", secrets.token_urlsafe(24)) for service in SERVICES}
    await provision(kafka, principals)
    return {
        service: kafka.model_copy(
            update={"sasl_username": principal.username, "sasl_password": SecretStr(principal.password)}
        )
        for service, principal in principals.items()
    }
