"""The services as `make run` starts them: real processes (`timpora-<service> serve`, uvicorn),
answering /healthz and /readyz on the real stack, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from timpora.common.settings import DatabaseSettings, KafkaSettings

SERVICES = ("registry", "alerts", "sharing")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_healthy(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited with {process.returncode} before answering")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the service did not answer in time")


@pytest.mark.timeout(180)
def test_each_service_process_serves_health_and_readiness_and_stops_on_sigterm(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    processes: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for service in SERVICES:
            port = _free_port()
            prefix = f"TIMPORA_{service.upper()}_"
            environment = os.environ | {
                f"{prefix}KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
                f"{prefix}DATABASE__URL": database_settings[service].url.get_secret_value(),
                f"{prefix}HTTP__PORT": str(port),
                f"{prefix}LOG_LEVEL": "INFO",
                # Its own consumer group: a developer's running sharing service must not share its partitions.
                f"{prefix}CONSUMER_GROUP": f"test-serve-{uuid.uuid4().hex[:8]}",
            }
            command = [sys.executable, "-m", f"timpora.{service}.main", "serve"]
            log = (tmp_path / f"{service}.log").open("wb")
            processes[service] = (port, subprocess.Popen(command, env=environment, stdout=log, stderr=log))  # noqa: S603

        for service, (port, process) in processes.items():
            ready = _wait_healthy(port, process)
            assert ready.status_code == 200, (service, ready.text)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok", "service": service}
            assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        for _, process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {service: process.wait(timeout=30) for service, (_, process) in processes.items()}
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says how it ended.
    assert set(codes.values()) <= {0, -signal.SIGTERM}, codes
    for service in SERVICES:
        lines = [
            json.loads(line) for line in (tmp_path / f"{service}.log").read_text().splitlines() if line.startswith("{")
        ]
        messages = [line["message"] for line in lines]
        assert "service started" in messages
        assert "service stopped" in messages, f"{service} did not shut down cleanly"
        assert all(line["service"] == service for line in lines)
