"""The services as `make run` starts them: real processes (`python -m timpora.<service>.main serve`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from timpora.common.settings import DatabaseSettings, KafkaSettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    """``timpora-<service> serve`` on a free port, with the test's broker, namespace and database."""
    port = free_port()
    prefix = f"TIMPORA_{service.upper()}_"
    environment = os.environ | {
        f"{prefix}KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        f"{prefix}KAFKA__NAMESPACE": kafka.namespace,
        f"{prefix}DATABASE__URL": database.url.get_secret_value(),
        f"{prefix}HTTP__PORT": str(port),
        f"{prefix}LOG_LEVEL": "INFO",
        **(extra or {}),
    }
    command = [sys.executable, "-m", f"timpora.{service}.main", "serve"]
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=output)  # noqa: S603 - our module
    return ServiceProcess(service, port, process, log)
