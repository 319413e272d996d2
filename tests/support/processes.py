"""The services as `make run` starts them: real processes (`python -m timpora.<service>.main serve`)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from timpora.common.settings import DatabaseSettings, KafkaSettings

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux: 32768-60999 unless configured otherwise)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii").split()
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(int(low), int(high) + 1)


def listening_ports() -> range:
    """Where a test's server may listen: outside the ephemeral ports. A port the kernel just gave as free (bind to
    0) is an ephemeral one, and between the probe and the server's own bind any outgoing connection (a service's to
    one of three Kafka brokers) may take it: the server then cannot start."""
    ephemeral = _ephemeral_ports()
    if 65536 - ephemeral.stop >= 2_000:
        return range(ephemeral.stop, 65536)
    return range(10_000, ephemeral.start)


#: Every port this test run handed out or set aside. A port given to a server that has not bound it yet (a service
#: takes seconds to start) still probes free, and a second server given it too could not start (a clean-clone run
#: had two of the fault platform's services drawn the same port): no port is given twice in a run.
_GIVEN: set[int] = set()


def reserve(ports: Iterable[int]) -> None:
    """Sets ``ports`` aside for the caller (a stack's brokers, which may be stopped and started again on them)."""
    _GIVEN.update(ports)


def reserved(port: int) -> bool:
    return port in _GIVEN


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral ports (see ``listening_ports``), and never given before
    in this test run."""
    ports = listening_ports()
    for _ in range(500):
        port = random.choice(ports)
        if port in _GIVEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise AssertionError(f"no free port in {ports}")


def die_with_the_tests() -> None:
    """``preexec_fn`` of a child process: killed when the test run is (Linux ``PR_SET_PDEATHSIG``), so a
    test run that is itself killed leaves no service, broker or frozen JVM behind. One C call, with libc
    loaded beforehand: nothing in it takes a lock another thread could have held at the fork."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def service_environment(
    service: str, *, kafka: KafkaSettings, database: DatabaseSettings, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment a ``timpora-<service>`` process reads: the test's broker, namespace and database."""
    prefix = f"TIMPORA_{service.upper()}_"
    # The test's principal, not the one the stack's environment names for the service: the service principals'
    # rules cover the stack's own namespace, not the test's (tests/kafka/test_acls.py runs them in theirs).
    login = {
        f"{prefix}KAFKA__SASL_MECHANISM": kafka.sasl_mechanism or "",
        f"{prefix}KAFKA__SASL_USERNAME": kafka.sasl_username or "",
        f"{prefix}KAFKA__SASL_PASSWORD": kafka.sasl_password.get_secret_value() if kafka.sasl_password else "",
    }
    environment = {name: value for name, value in os.environ.items() if not name.startswith(f"{prefix}KAFKA__SASL_")}
    return environment | {
        f"{prefix}KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        f"{prefix}KAFKA__NAMESPACE": kafka.namespace,
        f"{prefix}KAFKA__REPLICAS": str(kafka.replicas),
        f"{prefix}DATABASE__URL": database.url.get_secret_value(),
        **{name: value for name, value in login.items() if value},
        **(extra or {}),
    }


@dataclass
class ServiceProcess:
    service: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout_s: float = 90.0) -> httpx.Response:
        """Waits until ``/readyz`` answers 200; fails with the log's tail if the process exits or never is."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.service} exited with {self.process.returncode}:\n{self.tail()}")
                try:
                    answer = await client.get(f"{self.url}/readyz")
                    if answer.status_code == 200:
                        return answer
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.service} was not ready within {timeout_s} s:\n{self.tail()}")

    async def stop(self, timeout_s: float = 30.0) -> float:
        """Sends SIGTERM; returns the seconds until the process exited (``timeout_s`` and a kill if it did not)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        while self.process.poll() is None:
            if time.monotonic() - started > timeout_s:
                self.process.kill()
                self.process.wait()
                return timeout_s
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def messages(self) -> list[dict[str, Any]]:
        """The JSON log lines the process wrote."""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def start_service(
    service: str,
    *,
    kafka: KafkaSettings,
    database: DatabaseSettings,
    log: Path,
    extra: dict[str, str] | None = None,
) -> ServiceProcess:
    """``timpora-<service> serve`` on a free port, with the test's broker, namespace and database. Each start
    writes a log of its own (``log``, then ``log`` with a number): what one run logged is not read as another's."""
    port = free_port()
    prefix = f"TIMPORA_{service.upper()}_"
    environment = service_environment(
        service,
        kafka=kafka,
        database=database,
        extra={f"{prefix}HTTP__PORT": str(port), f"{prefix}LOG_LEVEL": "INFO", **(extra or {})},
    )
    command = [sys.executable, "-m", f"timpora.{service}.main", "serve"]
    fresh = next(
        candidate
        for candidate in (log, *(log.with_name(f"{log.stem}.{n}{log.suffix}") for n in range(1, 1000)))
        if not candidate.exists()
    )
    with fresh.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our module
            command,
            env=environment,
            stdout=output,
            stderr=output,
            preexec_fn=die_with_the_tests,  # noqa: PLW1509 - one C call, see die_with_the_tests
        )
    return ServiceProcess(service, port, process, fresh)
