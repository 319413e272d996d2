"""A second local stack of the test run's own, started by deploy/local/stack itself in a folder and on ports of its
own, with Kafka as a cluster of three nodes (TIMPORA_STACK_KAFKA_NODES=3) and a PostgreSQL of its own: what the
cluster tests and the fault scenarios run on, so that killing a broker or restarting PostgreSQL touches nothing the
rest of the test run uses."""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.faults import kafka_libs
from tests.support.processes import listening_ports, reserve, reserved
from tests.support.stack import REPO
from tests.support.waiting import until
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings

STACK = REPO / "deploy" / "local" / "stack"
NODES = 3


@dataclass
class Cluster:
    directory: Path
    environment: dict[str, str]

    def stack(self, *arguments: str) -> str:
        """Runs ``deploy/local/stack ARGUMENTS`` on this cluster's stack; its output (fails with its error)."""
        done = subprocess.run(  # noqa: S603 - the repository's own script
            [str(STACK), *arguments], env=self.environment, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def exported(self) -> dict[str, str]:
        """What ``stack env`` tells the services and the operator."""
        found = {}
        for line in self.stack("env").splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
        return found

    @property
    def operator(self) -> KafkaSettings:
        """The operator's connection, under a namespace of the caller's own."""
        operator = {
            name.removeprefix("TIMPORA_KAFKA_").lower(): value
            for name, value in self.exported().items()
            if name.startswith("TIMPORA_KAFKA_")
        }
        return OperatorKafkaSettings.model_validate(operator).admin(
            namespace=f"test-{uuid.uuid4().hex[:12]}", request_timeout_ms=20_000
        )

    @property
    def pg_admin_url(self) -> str:
        return self.exported()["TIMPORA_PG_ADMIN_URL"]

    def proxied(self, node: int) -> tuple[int, int]:
        """Node ``node``'s listener for clients that come through a TCP proxy: (the port it opens, the port it names to
        its clients, where the proxy is to listen). See deploy/local/stack."""
        step = 10 * (node - 1)
        return (
            int(self.environment["TIMPORA_STACK_KAFKA_PROXIED_PORT"]) + step,
            int(self.environment["TIMPORA_STACK_KAFKA_PROXIED_VIA"]) + step,
        )

    def pid(self, node: int) -> int:
        return int(self.stack("kafka-pid", str(node)))

    async def kill(self, node: int) -> None:
        """SIGKILL to Kafka node ``node``: no shutdown, no flush; returns once it is gone (or a zombie nobody reaped
        yet). ``stack("up")`` starts it again."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            return _gone(pid)

        await until(gone, what=f"Kafka node {node} (pid {pid}) gone", timeout_s=30)


def _gone(pid: int) -> bool:
    """Whether ``pid`` exited (a zombie nobody reaped yet has exited too)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports() -> dict[str, int]:
    """Bases for the services', controllers', TLS and proxied listeners and the proxies in front of those (node N at
    base + 10*(N-1)), and PostgreSQL's."""
    rng = random.Random()
    ports = listening_ports()  # outside the ephemeral ports, which clients take
    for _ in range(200):
        base = rng.randrange(ports.start, ports.stop - 100, 100)
        wanted = [base + kind + 10 * node for kind in (2, 3, 4, 5, 6) for node in range(NODES)] + [base + 50]
        if all(_free(port) and not reserved(port) for port in wanted):
            # Set aside for the whole run: while a node is stopped its ports probe free, and no service may take them.
            reserve(wanted)
            return {"kafka": base + 2, "controller": base + 3, "tls": base + 4, "proxied": base + 5, "via": base + 6,
                    "pg": base + 50}  # fmt: skip
    raise AssertionError("no free ports for a cluster of three")


@contextmanager
def cluster(directory: Path) -> Iterator[Cluster]:
    """Starts the cluster's stack in ``directory`` (PostgreSQL's user must be able to reach it), stops it after."""
    # The jars the local stack already fetched (Maven is not asked again): the stamp says they are the pom's.
    libs = kafka_libs()
    (directory / "kafka").mkdir(parents=True)
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
        "TIMPORA_STACK_KAFKA_PROXIED_PORT": str(ports["proxied"]),
        "TIMPORA_STACK_KAFKA_PROXIED_VIA": str(ports["via"]),
        "TIMPORA_STACK_PG_PORT": str(ports["pg"]),
    }
    started = Cluster(directory, environment)
    try:
        started.stack("up")
        yield started
    finally:
        subprocess.run([str(STACK), "down"], env=environment, capture_output=True, timeout=120, check=False)  # noqa: S603
