"""Where the tests find a real Kafka broker and PostgreSQL.

In order: connection settings from the environment; else the local stack (deploy/local/stack) if it
is up; else testcontainers when a Docker engine answers. With none of them a real-stack test is
skipped on a developer's machine and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from timpora.common.settings import KafkaSettings, OperatorKafkaSettings

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Stack:
    #: The operators' connection (a super user on a locked-down broker): tests make topics, read any topic
    #: and grant rules with it. A test's namespace goes on top (see the ``kafka_settings`` fixture).
    kafka: KafkaSettings
    pg_admin_url: str
    source: str
    #: The operator settings as given (agencies' TLS address, CA file); None without a locked-down broker.
    operator: OperatorKafkaSettings | None = None

    @property
    def locked_down(self) -> bool:
        return self.kafka.sasl_mechanism is not None


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _stack(operator: OperatorKafkaSettings, postgres: str, source: str) -> Stack:
    return Stack(operator.admin(), postgres, source, operator)


def from_environment() -> Stack | None:
    kafka = os.environ.get("TIMPORA_KAFKA_BOOTSTRAP_SERVERS")
    postgres = os.environ.get("TIMPORA_PG_ADMIN_URL")
    if kafka and postgres:
        return _stack(OperatorKafkaSettings(), postgres, "environment")
    return None


def from_local_stack() -> Stack | None:
    if not (REPO / ".stack" / "secrets.env").is_file():
        return None
    output = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(REPO / "deploy" / "local" / "stack"), "env"], capture_output=True, text=True, check=True
    ).stdout
    values = dict(
        line.removeprefix("export ").split("=", 1) for line in output.splitlines() if line.startswith("export ")
    )
    operator = OperatorKafkaSettings.model_validate(
        {
            name.removeprefix("TIMPORA_KAFKA_").lower(): value
            for name, value in values.items()
            if name.startswith("TIMPORA_KAFKA_")
        }
    )
    postgres = values["TIMPORA_PG_ADMIN_URL"]
    pg_address = postgres.rsplit("@", 1)[1].split("/", 1)[0]
    if _port_open(operator.bootstrap_servers) and _port_open(pg_address):
        return _stack(operator, postgres, "local stack")
    return None


def _docker_answers() -> bool:
    try:
        import docker  # noqa: PLC0415 - only needed on machines with Docker

        docker.from_env().ping()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure means: no usable Docker engine
        return False
    return True


@contextlib.contextmanager
def from_testcontainers() -> Iterator[Stack | None]:
    if not _docker_answers():
        yield None
        return
    from testcontainers.kafka import KafkaContainer  # noqa: PLC0415
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    with (
        # Record timestamps are the broker's, as on the local stack (libs/common topics.APPEND_TIME).
        KafkaContainer("apache/kafka:4.1.1")
        .with_kraft()
        .with_env("KAFKA_LOG_MESSAGE_TIMESTAMP_TYPE", "LogAppendTime") as kafka,
        PostgresContainer("postgres:17", driver=None) as postgres,
    ):
        yield Stack(
            KafkaSettings(bootstrap_servers=kafka.get_bootstrap_server()),
            postgres.get_connection_url(),
            "testcontainers",
        )


@contextlib.contextmanager
def resolve() -> Iterator[Stack | None]:
    found = from_environment() or from_local_stack()
    if found is not None:
        yield found
        return
    with from_testcontainers() as containers:
        yield containers
