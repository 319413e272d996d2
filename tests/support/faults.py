"""Peers that stop answering, for tests of what the services do then: a Kafka broker of the test's own
that can be frozen (SIGSTOP) or killed, and a TCP proxy in front of PostgreSQL that can black-hole; and a
wall clock that jumps, for processes started under it.

A frozen peer is the hard case: connections stay open and nothing comes back, so every wait that
trusts the other side to answer waits for ever. A refused connection fails fast by comparison.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path

from tests.support.processes import die_with_the_tests, free_port
from tests.support.stack import REPO
from tests.support.waiting import until
from timpora.common.kafka.admin import admin_client
from timpora.common.settings import KafkaSettings

KAFKA_LOG4J = REPO / "deploy" / "local" / "kafka-log4j2.properties"


def kafka_libs() -> Path:
    """The Kafka jars the local stack fetched with Maven (deploy/local/stack)."""
    return Path(os.environ.get("TIMPORA_STACK_DIR", REPO / ".stack")) / "kafka" / "libs"


@dataclass
class KafkaNode:
    """A single-node KRaft broker of the test's own, from the local stack's jars."""

    bootstrap_servers: str
    process: subprocess.Popen[bytes]

    def freeze(self) -> None:
        """The broker stops answering; its connections stay open."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    async def thawed(self, timeout_s: float = 60.0) -> None:
        """Thaws the broker and waits until it answers again (its controller may need a moment)."""
        self.thaw()
        settings = KafkaSettings(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5_000)

        async def answers() -> bool:
            admin = admin_client(settings)
            try:
                await admin.start()
                await admin.list_topics()
            except Exception:  # noqa: BLE001 - not yet: any failure means ask again
                return False
            else:
                return True
            finally:
                await admin.close()

        await until(answers, what="the thawed broker answering", timeout_s=timeout_s)


def _kafka_config(directory: Path, port: int, controller_port: int) -> Path:
    config = directory / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={directory / 'data'}",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


@contextlib.contextmanager
def kafka_node(directory: Path, *, start_timeout_s: float = 120.0) -> Iterator[KafkaNode]:
    """Formats and starts a broker in ``directory``; kills it on exit (thawed first if frozen)."""
    libs = kafka_libs()
    if not libs.is_dir():
        raise FileNotFoundError(f"no Kafka jars in {libs}: run deploy/local/stack up once")
    port, controller_port = free_port(), free_port()
    config = _kafka_config(directory, port, controller_port)
    java = ["java", "-Xms128m", "-Xmx512m", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", f"{libs}/*"]
    cluster_id = "-"
    while cluster_id.startswith("-"):
        # One in 64 would start with "-", which StorageTool takes for an option and refuses (a clean-clone run had
        # the frozen-Kafka tests' broker fail to format so): Kafka's own Uuid.randomUuid never gives one.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(  # noqa: S603 - java with our arguments
        [*java, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(config)],
        check=True,
        capture_output=True,
        timeout=start_timeout_s,
    )
    output = directory / "kafka.out"
    with output.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - java with our arguments
            [*java, "kafka.Kafka", str(config)],
            stdout=log,
            stderr=log,
            preexec_fn=die_with_the_tests,  # noqa: PLW1509 - one C call, see die_with_the_tests
        )
    node = KafkaNode(f"127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + start_timeout_s
        while b"Kafka Server started" not in output.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test's Kafka did not start:\n{output.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield node
    finally:
        node.thaw()
        process.kill()
        process.wait()


@dataclass
class TcpProxy:
    """Forwards 127.0.0.1:``port`` (one the system picks, if 0) to a target. ``black_hole`` freezes it: open
    connections stop moving bytes and new ones are accepted but never connected through, as with a server that
    hangs. ``delay_s`` holds every chunk of bytes that long (latency); ``reset`` cuts every open connection, both
    ways, with a TCP reset."""

    target_host: str
    target_port: int
    port: int = 0
    #: Latency added to every chunk of bytes, each way.
    delay_s: float = 0.0
    _moving: asyncio.Event = field(default_factory=asyncio.Event)
    #: Connections accepted so far (a service that connects is past the first steps of its start).
    accepted: int = 0
    #: Connections cut by ``reset`` so far.
    cut: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    def black_hole(self) -> None:
        self._moving.clear()

    def restore(self) -> None:
        self._moving.set()

    def reset(self) -> None:
        """Every open connection aborted (RST to both ends), as when a network device between them restarts."""
        for writer in list(self._open):
            connection = writer.get_extra_info("socket")
            if connection is not None:
                # Closed with no lingering, the kernel sends a reset rather than an orderly end (FIN).
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            self.cut += 1
        self._open.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while data := await reader.read(65536):
                await self._moving.wait()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        this = asyncio.current_task()
        if this is not None:
            self._tasks.add(this)
            this.add_done_callback(self._tasks.discard)
        await self._moving.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.close()
            return
        for pipe in (self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        self._moving.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def tcp_proxy(target_host: str, target_port: int, port: int = 0) -> AsyncIterator[TcpProxy]:
    """A proxy to the target on 127.0.0.1:``port`` (0: one the system picks)."""
    proxy = TcpProxy(target_host, target_port, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@dataclass
class ShiftedClock:
    """The wall clock of every process started with :meth:`environment`, moved forward by :meth:`jump` while they
    run, as a host's clock set right by NTP (or a VM resumed) moves under its programs: libfaketime (the PyPI
    package's bundled build, LD_PRELOAD) reads the offset from ``file``. Only the wall clock moves; the monotonic
    clock asyncio's timers run on does not, as with a real jump. PostgreSQL's ``now()`` does not move either."""

    file: Path
    offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self._write()

    def environment(self) -> dict[str, str]:
        spec = find_spec("libfaketime")
        assert spec is not None, "libfaketime is not installed (make install)"
        assert spec.origin is not None
        library = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
        return {
            "LD_PRELOAD": str(library),
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            # The file is read again at most a second after it changes.
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def jump(self, by: timedelta) -> None:
        self.offset += by
        self._write()

    def now(self) -> datetime:
        """The time the processes under this clock read (within the second libfaketime caches it)."""
        return datetime.now(UTC) + self.offset

    def _write(self) -> None:
        # Written whole and renamed: a process never reads half an offset.
        partial = self.file.with_suffix(".tmp")
        partial.write_text(f"+{int(self.offset.total_seconds())}\n", encoding="ascii")
        partial.replace(self.file)
