"""The services as `make run` starts them: real processes (`timpora-<service> serve`, uvicorn),
answering /healthz and /readyz on the real stack, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import signal
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
