"""The services as `make run` starts them: real processes (`timpora-<service> serve`, uvicorn),
answering /healthz and /readyz on the real stack, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServiceProcess, start_service
from timpora.common.settings import DatabaseSettings, KafkaSettings

SERVICES = ("registry", "alerts", "sharing")


@pytest.mark.timeout(180)
async def test_each_service_process_serves_health_and_readiness_and_stops_on_sigterm(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    processes: dict[str, ServiceProcess] = {}
    try:
        for service in SERVICES:
            processes[service] = start_service(
                service, kafka=kafka_settings, database=database_settings[service], log=tmp_path / f"{service}.log"
            )
        async with httpx.AsyncClient() as client:
            for service, process in processes.items():
                ready = await process.ready()
                assert ready.status_code == 200, (service, ready.text)
                assert (await client.get(f"{process.url}/healthz")).json() == {"status": "ok", "service": service}
                assert (await client.get(f"{process.url}/docs")).status_code == 200
    finally:
        for process in processes.values():
            await process.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says how it ended.
    codes = {service: process.process.returncode for service, process in processes.items()}
    assert set(codes.values()) <= {0, -signal.SIGTERM}, codes
    for service, process in processes.items():
        lines = process.messages()
        messages = [line["message"] for line in lines]
        assert "service started" in messages
        assert "service stopped" in messages, f"{service} did not shut down cleanly"
        assert all(line["service"] == service for line in lines)


@pytest.mark.parametrize(
    ("setting", "value", "why"),
    [
        ("KAFKA__PRODUCER_ACKS", "1", "must be 'all'"),
        ("KAFKA__PRODUCER_IDEMPOTENCE", "false", "a retried send can write an event twice"),
        ("KAFKA__CONSUMER_AUTO_COMMIT", "true", "a crash then loses it"),
    ],
)
def test_a_service_refuses_to_start_with_weaker_durability_and_says_why(setting: str, value: str, why: str) -> None:
    environment = os.environ | {f"TIMPORA_SHARING_{setting}": value}

    refused = subprocess.run(
        [sys.executable, "-m", "timpora.sharing.main", "serve"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert refused.returncode == 2
    assert refused.stderr.startswith(f"timpora-sharing: setting kafka.{setting.split('__')[1].lower()} refused: ")
    assert why in refused.stderr
    assert "Traceback" not in refused.stderr
