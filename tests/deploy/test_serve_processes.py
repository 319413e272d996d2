"""The services as `make run` starts them: real processes (`timpora-<service> serve`, uvicorn),
answering /healthz and /readyz on the real stack, and stopping cleanly on SIGTERM; and refusing to start
with a placeholder password (no stack needed: they stop before connecting)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.support.processes import ServiceProcess, start_service
from timpora.common.settings import DatabaseSettings, KafkaSettings

#: Every service `make run` starts; the portal among them, though it does not use Kafka (its readiness is PostgreSQL's).
SERVICES = ("registry", "alerts", "sharing", "portal")


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
                # The APIs document themselves; the portal is pages, with no API to document.
                docs = await client.get(f"{process.url}/docs")
                assert docs.status_code == (404 if service == "portal" else 200), service
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


#: A placeholder as deploy/.env.example ships them, distinctive enough to find if it were echoed.
PLACEHOLDER = "change-me-too"


@pytest.mark.parametrize(
    ("service", "setting", "variable", "value"),
    [
        (
            service,
            "database.url",
            f"TIMPORA_{service.upper()}_DATABASE__URL",
            f"postgresql+asyncpg://u:{PLACEHOLDER}@db/t",
        )
        for service in SERVICES
    ]
    + [
        ("registry", "kafka.sasl_password", "TIMPORA_REGISTRY_KAFKA__SASL_PASSWORD", PLACEHOLDER),
        ("sharing", "kafka.sasl_password", "TIMPORA_SHARING_KAFKA__SASL_PASSWORD", ""),
        ("alerts", "smtp.password", "TIMPORA_ALERTS_SMTP__PASSWORD", PLACEHOLDER),
    ],
)
async def test_a_service_with_a_placeholder_password_refuses_to_start_without_showing_it(
    tmp_path: Path, service: str, setting: str, variable: str, value: str
) -> None:
    # Nothing is reached: the settings are refused before any connection is tried.
    process = start_service(
        service,
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        database=DatabaseSettings(url=SecretStr("postgresql+asyncpg://u@127.0.0.1:1/t")),
        log=tmp_path / f"{service}.log",
        extra={variable: value},
    )

    code = await asyncio.to_thread(process.process.wait, 60)

    output = process.log.read_text(encoding="utf-8")
    assert code == 2, output
    assert f"timpora-{service}: setting {setting} refused: the password is " in output
    assert PLACEHOLDER not in output


def _run_module(module: str, *arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our module
        [sys.executable, "-m", module, *arguments],
        env={name: value for name, value in os.environ.items() if not name.startswith("TIMPORA_")} | environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_agencies_tool_refuses_a_placeholder_operator_password_without_showing_it() -> None:
    done = _run_module(
        "timpora.common.register.kafka_access",
        "kafka",
        "sync",
        environment={"TIMPORA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TIMPORA_KAFKA_PASSWORD": PLACEHOLDER},
    )

    assert done.returncode == 2, done.stderr
    assert "timpora-agencies: setting password refused: the password is a placeholder" in done.stderr
    assert PLACEHOLDER not in done.stdout + done.stderr


#: What refuse_placeholder says of one.
WHY_REFUSED = "the password is a placeholder from an example, known to anyone who read it: set one of your own"


def test_provisioning_refuses_a_placeholder_operator_password_in_one_line_without_showing_it() -> None:
    done = _run_module(
        "timpora.common.kafka.provision",
        environment={"TIMPORA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TIMPORA_KAFKA_PASSWORD": PLACEHOLDER},
    )

    # Refused before it connects (an unreachable broker would fail it later, and differently): a line, no traceback.
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"provision: setting password refused: {WHY_REFUSED}"]
    assert PLACEHOLDER not in done.stdout + done.stderr


def test_provisioning_refuses_a_placeholder_service_password_naming_the_variable_not_the_value() -> None:
    done = _run_module(
        "timpora.common.kafka.provision",
        environment={
            "TIMPORA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "TIMPORA_ALERTS_KAFKA__SASL_USERNAME": "timpora-alerts",
            "TIMPORA_ALERTS_KAFKA__SASL_PASSWORD": PLACEHOLDER,
        },
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"provision: TIMPORA_ALERTS_KAFKA__SASL_PASSWORD refused: {WHY_REFUSED}"]
    assert PLACEHOLDER not in done.stdout + done.stderr


def test_provisioning_says_in_one_line_that_kafka_cannot_be_reached() -> None:
    done = _run_module(
        "timpora.common.kafka.provision",
        environment={
            # A closed port: nothing listens on 1.
            "TIMPORA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "TIMPORA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TIMPORA_KAFKA_USERNAME": "admin",
            "TIMPORA_KAFKA_PASSWORD": "9f2c4e1a7b3d",
        },
    )

    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "provision: cannot reach Kafka at 127.0.0.1:1 as admin (KafkaConnectionError); is the stack up?"
    ]
    assert "9f2c4e1a7b3d" not in done.stdout + done.stderr


def test_the_database_bootstrap_refuses_a_placeholder_password_without_showing_it() -> None:
    done = _run_module(
        "timpora.common.db.bootstrap",
        environment={
            "TIMPORA_PG_ADMIN_URL": f"postgresql://postgres:{PLACEHOLDER}@127.0.0.1:1/timpora",
            "TIMPORA_REGISTRY_DATABASE__URL": "postgresql+asyncpg://timpora_registry:9f2c4e1a7b@127.0.0.1:1/timpora",
        },
    )

    assert done.returncode == 2, done.stderr
    assert "TIMPORA_PG_ADMIN_URL refused: the password is a placeholder" in done.stderr
    assert PLACEHOLDER not in done.stdout + done.stderr


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
