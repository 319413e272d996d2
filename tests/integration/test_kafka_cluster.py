"""The local stack as a cluster of three Kafka nodes (TIMPORA_STACK_KAFKA_NODES=3; the ``cluster`` fixture,
tests/support/cluster.py): every topic on three brokers, a write acknowledged once two have it, and a broker killed
mid-stream (kill -9) losing no acknowledged event and writing none twice."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from tests.support.cluster import NODES, STACK, Cluster
from tests.support.waiting import until
from timpora.common.events import KafkaRecord
from timpora.common.kafka.admin import (
    admin_client,
    admin_session,
    describe_partitions,
    ensure_topics,
    records_to_end,
    started_consumer,
)
from timpora.common.kafka.broker import client_options, durability
from timpora.common.kafka.producer import EventProducer
from timpora.common.kafka.provision import TooFewBrokersError, enough_brokers, provision
from timpora.common.topics import TopicSpec

pytestmark = [pytest.mark.realstack, pytest.mark.timeout(420)]


async def test_every_topic_is_kept_on_three_brokers_and_a_write_waits_for_two(cluster: Cluster) -> None:
    settings = cluster.operator
    assert settings.replicas == NODES  # what `stack env` tells the services and the operator
    assert len(settings.bootstrap_servers.split(",")) == NODES
    spec = settings.catalog.registry_events
    assert await ensure_topics(settings, [spec]) == [spec.name]

    partitions = await describe_partitions(settings, spec.name)
    assert len(partitions) == spec.partitions
    assert all(sorted(partition["replicas"]) == list(range(1, NODES + 1)) for partition in partitions)
    admin = admin_client(settings)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name)])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}  # type: ignore[attr-defined]
    assert configs["min.insync.replicas"] == "2"
    # The stack's own properties: the cluster's own topics (consumer offsets) are kept on three as well.
    node_config = (cluster.directory / "kafka" / "node2" / "server.properties").read_text(encoding="utf-8")
    assert "offsets.topic.replication.factor=3" in node_config
    assert "node.id=2" in node_config
    # The nodes log in to each other's controllers with the broker's own login: over TLS, to the stack's CA.
    assert "listener.security.protocol.map=CONTROLLER:SASL_SSL," in node_config
    controller = int(cluster.environment["TIMPORA_STACK_KAFKA_CONTROLLER_PORT"]) + 10
    context = ssl.create_default_context(cafile=str(cluster.directory / "tls" / "ca.crt"))
    _, writer = await asyncio.open_connection("127.0.0.1", controller, ssl=context, server_hostname="localhost")
    writer.close()
    await writer.wait_closed()


async def test_a_broker_killed_mid_stream_loses_no_acknowledged_event_and_writes_none_twice(
    cluster: Cluster,
) -> None:
    """Each key's records are numbered; a broker that leads some partitions is killed with SIGKILL once a third are
    acknowledged. Every send must still be acknowledged (the producer retries on the new leaders), and reading the
    topic back gives every key's numbers once each, in order. The node started again (`stack up`) catches up."""
    settings = cluster.operator
    spec = settings.catalog.registry_events
    await ensure_topics(settings, [spec])
    leaders = {int(partition["leader"]) for partition in await describe_partitions(settings, spec.name)}
    victim = min(leaders)
    keys = [uuid.uuid4().hex for _ in range(24)]
    per_key = 150
    producer = AIOKafkaProducer(**client_options(settings), **durability(settings))
    await producer.start()
    acknowledged = 0
    try:
        for number in range(per_key):
            if number == per_key // 3:
                await cluster.kill(victim)
            # One record per key at a time, each awaited: what the relay does per person (its order is the
            # registry's), so a retry after the kill can neither reorder nor repeat what was acknowledged.
            await asyncio.gather(
                *(producer.send_and_wait(spec.name, key=key.encode(), value=str(number).encode()) for key in keys)
            )
            acknowledged += len(keys)
    finally:
        await producer.stop()
    assert acknowledged == per_key * len(keys)

    seen: dict[str, list[int]] = {key: [] for key in keys}
    async with started_consumer(settings, enable_auto_commit=False, auto_offset_reset="earliest") as consumer:
        partitions = [TopicPartition(spec.name, partition) for partition in range(spec.partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)

        async def behind() -> bool:
            return any([await consumer.position(partition) < ends[partition] for partition in partitions])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=1_000)).values():
                for record in records:
                    assert record.key is not None
                    assert record.value is not None
                    seen[record.key.decode()].append(int(record.value))
    assert all(numbers == list(range(per_key)) for numbers in seen.values()), {
        key: numbers[:5] for key, numbers in seen.items() if numbers != list(range(per_key))
    }

    cluster.stack("up")  # starts the killed node again, and only it

    async def all_in_sync() -> bool:
        return all(len(partition["isr"]) == NODES for partition in await describe_partitions(settings, spec.name))

    await until(all_in_sync, what=f"node {victim} back in every partition's in-sync replicas", timeout_s=180)


async def test_a_send_that_found_no_leader_until_it_timed_out_does_not_shut_its_partition_for_good(
    cluster: Cluster,
) -> None:
    """The whole cluster restarting leaves partitions without a leader for a while; a batch waiting longer than the
    request timeout fails, and the relay sends its rows again. aiokafka had given that batch its sequence number all
    the same, so the same producer's next batches to the partition were refused as out of order, for good (a
    clean-clone run of the fault suite lost two partitions' events so). A failed send renews the producer."""
    settings = cluster.operator.model_copy(update={"request_timeout_ms": 3_000})
    spec = TopicSpec(
        name=f"{settings.catalog.namespace}.no-leader",
        key="n",
        partitions=1,
        description="test",
        config={"min.insync.replicas": "1"},
    )
    await ensure_topics(settings, [spec])  # one copy: while its broker is stopped, the partition has no leader
    (partition,) = await describe_partitions(settings, spec.name)
    leader = int(partition["leader"])
    producer = EventProducer(settings, client_id="test-no-leader")
    await producer.start()
    try:
        # The partition knows this producer (a broker accepts any first number from a producer it never saw).
        await producer.send_record(spec.name, KafkaRecord(key=b"n", value=b"zero", headers=()))
        cluster.stack("kafka-stop", str(leader))
        with pytest.raises(KafkaError):
            await producer.send_record(spec.name, KafkaRecord(key=b"n", value=b"first", headers=()))
        cluster.stack("up")

        async def led() -> bool:
            return int((await describe_partitions(settings, spec.name))[0]["leader"]) == leader

        await until(led, what=f"node {leader} leading the partition again", timeout_s=180)
        await producer.send_record(spec.name, KafkaRecord(key=b"n", value=b"second", headers=()))
        await producer.send_record(spec.name, KafkaRecord(key=b"n", value=b"third", headers=()))
    finally:
        await producer.stop()
    assert [record.value async for record in records_to_end(settings, spec.name)] == [b"zero", b"second", b"third"]


def test_a_stack_of_three_is_not_made_a_stack_of_one_by_a_missing_setting(cluster: Cluster) -> None:
    """`make test` or `make run` without KAFKA_NODES keeps the three nodes; asking for one is refused, not carried
    out by emptying Kafka, unless the operator says so (TIMPORA_STACK_KAFKA_RESIZE=1)."""
    unset = {name: value for name, value in cluster.environment.items() if name != "TIMPORA_STACK_KAFKA_NODES"}
    status = subprocess.run([str(STACK), "status"], env=unset, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert status.stdout.count("running") >= NODES, status.stdout  # every node listed, by the size it was made with
    asked = cluster.environment | {"TIMPORA_STACK_KAFKA_NODES": "1"}
    refused = subprocess.run([str(STACK), "up"], env=asked, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert refused.returncode != 0
    assert "TIMPORA_STACK_KAFKA_RESIZE=1" in refused.stderr
    assert all(f"kafka node {node}: running" in cluster.stack("status") for node in range(1, NODES + 1))


async def test_provisioning_waits_for_a_broker_for_every_copy_and_says_so_if_one_never_comes(cluster: Cluster) -> None:
    """docker-compose calls a node healthy once two of three brokers answer (one down leaves the others healthy),
    so the first provisioning of a cluster may come before its last node: it waits for one per copy, and names what
    is missing if it never comes, rather than failing on the first topic."""
    settings = cluster.operator
    cluster.stack("kafka-stop", str(NODES))
    try:

        async def one_fewer() -> bool:
            async with admin_session(settings) as client:
                return len((await client.describe_cluster())["brokers"]) == NODES - 1

        await until(one_fewer, what=f"node {NODES} gone from the cluster", timeout_s=60)
        with pytest.raises(
            TooFewBrokersError, match=f"{NODES - 1} Kafka broker\\(s\\) run and each topic is to be kept on {NODES}"
        ):
            await provision(settings, {}, brokers_wait_s=2)
        waiting = asyncio.create_task(enough_brokers(settings, timeout_s=180))
    finally:
        await asyncio.to_thread(cluster.stack, "up")  # the node back while the provisioning waits
    assert await waiting == NODES
