"""The local stack as a cluster of three Kafka nodes (TIMPORA_STACK_KAFKA_NODES=3), started by deploy/local/stack
itself in a folder and on ports of the test's own: every topic on three brokers, a write acknowledged once two have
it, and a broker killed mid-stream (kill -9) losing no acknowledged event and writing none twice."""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.faults import kafka_libs
from tests.support.stack import REPO
from tests.support.waiting import until
from timpora.common.kafka.admin import admin_client, ensure_topics
from timpora.common.kafka.broker import client_options, durability
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings

pytestmark = [pytest.mark.realstack, pytest.mark.timeout(420)]

STACK = REPO / "deploy" / "local" / "stack"
NODES = 3


@dataclass
class Cluster:
    directory: Path
    environment: dict[str, str]

    def stack(self, *arguments: str) -> str:
        done = subprocess.run(  # noqa: S603 - the repository's own script
            [str(STACK), *arguments], env=self.environment, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    @property
    def operator(self) -> KafkaSettings:
        exported = {}
        for line in self.stack("env").splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            exported[name] = shlex.split(value)[0]
        operator = {
            name.removeprefix("TIMPORA_KAFKA_").lower(): value
            for name, value in exported.items()
            if name.startswith("TIMPORA_KAFKA_")
        }
        return OperatorKafkaSettings.model_validate(operator).admin(
            namespace=f"test-{uuid.uuid4().hex[:12]}", request_timeout_ms=20_000
        )

    def pid(self, node: int) -> int:
        return int(self.stack("kafka-pid", str(node)))


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports() -> dict[str, int]:
    """Bases for the services', controllers' and TLS listeners (node N at base + 10*(N-1)) and PostgreSQL's."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000, 100)  # below the ephemeral ports (32768 on), which clients take
        wanted = [base + kind + 10 * node for kind in (2, 3, 4) for node in range(NODES)] + [base + 50]
        if all(_free(port) for port in wanted):
            return {"kafka": base + 2, "controller": base + 3, "tls": base + 4, "pg": base + 50}
    raise AssertionError("no free ports for a cluster of three")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    libs = kafka_libs()
    if not libs.is_dir():
        message = f"the Kafka jars of the local stack are not at {libs}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs on the local stack: {message}")
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("cluster")
    # The jars the local stack already fetched (Maven is not asked again): the stamp says they are the pom's.
    (directory / "kafka").mkdir()
    (directory / "kafka" / "libs").symlink_to(libs)
    shutil.copy(libs.parent / "libs.sha256", directory / "kafka" / "libs.sha256")
    ports = _ports()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("TIMPORA_")},
        "TIMPORA_STACK_DIR": str(directory),
        "TIMPORA_STACK_KAFKA_NODES": str(NODES),
        "TIMPORA_STACK_KAFKA_PORT": str(ports["kafka"]),
        "TIMPORA_STACK_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "TIMPORA_STACK_KAFKA_TLS_PORT": str(ports["tls"]),
        "TIMPORA_STACK_PG_PORT": str(ports["pg"]),
    }
    cluster = Cluster(directory, environment)
    try:
        cluster.stack("up")
        yield cluster
    finally:
        subprocess.run([str(STACK), "down"], env=environment, capture_output=True, timeout=120, check=False)  # noqa: S603


async def _partitions(settings: KafkaSettings, topic: str) -> list[dict[str, object]]:
    admin = admin_client(settings)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return list(description["partitions"])


async def test_every_topic_is_kept_on_three_brokers_and_a_write_waits_for_two(cluster: Cluster) -> None:
    settings = cluster.operator
    assert settings.replicas == NODES  # what `stack env` tells the services and the operator
    assert len(settings.bootstrap_servers.split(",")) == NODES
    spec = settings.catalog.registry_events
    assert await ensure_topics(settings, [spec]) == [spec.name]

    partitions = await _partitions(settings, spec.name)
    assert len(partitions) == spec.partitions
    assert all(sorted(partition["replicas"]) == [1, 2, 3] for partition in partitions)  # type: ignore[call-overload]
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


async def test_a_broker_killed_mid_stream_loses_no_acknowledged_event_and_writes_none_twice(
    cluster: Cluster,
) -> None:
    """Each key's records are numbered; a broker that leads some partitions is killed with SIGKILL once a third are
    acknowledged. Every send must still be acknowledged (the producer retries on the new leaders), and reading the
    topic back gives every key's numbers once each, in order. The node started again (`stack up`) catches up."""
    settings = cluster.operator
    spec = settings.catalog.registry_events
    await ensure_topics(settings, [spec])
    leaders = {int(partition["leader"]) for partition in await _partitions(settings, spec.name)}  # type: ignore[call-overload]
    victim = min(leaders)
    keys = [uuid.uuid4().hex for _ in range(24)]
    per_key = 150
    producer = AIOKafkaProducer(**client_options(settings), **durability(settings))
    await producer.start()
    acknowledged = 0
    try:
        for number in range(per_key):
            if number == per_key // 3:
                os.kill(cluster.pid(victim), signal.SIGKILL)
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
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
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
    finally:
        await consumer.stop()
    assert all(numbers == list(range(per_key)) for numbers in seen.values()), {
        key: numbers[:5] for key, numbers in seen.items() if numbers != list(range(per_key))
    }

    cluster.stack("up")  # starts the killed node again, and only it

    async def all_in_sync() -> bool:
        return all(len(partition["isr"]) == NODES for partition in await _partitions(settings, spec.name))  # type: ignore[arg-type]

    await until(all_in_sync, what=f"node {victim} back in every partition's in-sync replicas", timeout_s=180)
