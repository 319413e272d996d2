"""Fixtures for the registry: a running app on the real stack, an operator token, a hand-moved clock."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.clock import ManualClock
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings, RelaySettings
from timpora.registry.expiry import ExpiryScheduler
from timpora.registry.main import SERVICE
from timpora.registry.models import foreigners, outbox
from timpora.registry.operators import add_operator
from timpora.registry.settings import ExpirySettings, RegistrySettings

# Noon in Jakarta: far from any midnight, so a test's dates do not depend on the time zone.
START = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)


@dataclass
class Registry:
    client: AsyncClient
    runtime: ServiceRuntime
    clock: ManualClock
    token: str

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    async def arrive(self, **overrides: Any) -> Response:
        return await self.client.post("/v1/arrivals", json=arrival(**overrides))

    async def new_foreigner(self, **overrides: Any) -> dict[str, Any]:
        response = await self.arrive(**overrides)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def outbox_rows(self, foreigner_id: str) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.partition_key == foreigner_id)
            )
        return int(count or 0)

    async def foreigner_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(foreigners)) or 0)


def passport_number() -> str:
    return "X" + uuid.uuid4().hex[:10].upper()


def arrival(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "full_name": "Li Wei",
        "sex": "M",
        "date_of_birth": "1990-05-17",
        "nationality": "CHN",
        "passport": {"number": passport_number(), "issuing_country": "CHN", "expires_on": "2031-01-01"},
        "occupation": "engineer",
        "sponsor": {"name": "PT Garam Madura", "kind": "employer"},
        "port": "Juanda International Airport",
        "arrived_on": "2026-11-01",
    }
    body.update(overrides)
    return body


def permit(**overrides: Any) -> dict[str, Any]:
    """An ITAS for work by default; another type comes without a purpose unless one is given."""
    body: dict[str, Any] = {
        "number": "ITAS" + uuid.uuid4().hex[:10].upper(),
        "type": "itas",
        "purpose": "work",
        "issued_on": "2026-11-01",
        "expires_on": "2027-11-01",
    }
    body.update(overrides)
    if body["type"] not in {"itas", "itap"} and "purpose" not in overrides:
        del body["purpose"]
    return body


def registry_settings(
    kafka: KafkaSettings, database: DatabaseSettings, *, relay: bool = False, expiry: bool = False
) -> RegistrySettings:
    return RegistrySettings(
        kafka=kafka,
        database=database,
        relay=RelaySettings(enabled=relay, poll_interval_s=0.2),
        expiry=ExpirySettings(enabled=expiry),
    )


async def _started(settings: RegistrySettings, clock: ManualClock) -> AsyncIterator[Registry]:
    app = SERVICE.create_app(settings, clock=clock)
    runtime: ServiceRuntime = app.state.runtime
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        async with runtime.sessions() as session, session.begin():
            token = await add_operator(session, f"officer-{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://registry", headers=headers) as client:
            yield Registry(client=client, runtime=runtime, clock=clock, token=token)


@pytest.fixture
async def registry(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> AsyncIterator[Registry]:
    """The registry with its relay and scheduler stopped: tests drive them by hand."""
    settings = registry_settings(kafka_settings, database_settings["registry"])
    async for started in _started(settings, ManualClock(START)):
        yield started


@pytest.fixture
async def live_registry(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> AsyncIterator[Registry]:
    """The registry with its outbox relay running, as in production."""
    settings = registry_settings(kafka_settings, database_settings["registry"], relay=True)
    async for started in _started(settings, ManualClock(START)):
        yield started


def today() -> date:
    return START.date()


def noon_wib(day: date) -> datetime:
    """Noon in Bangkalan (WIB) on ``day``."""
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC)


def scheduler(registry: Registry, **expiry: Any) -> ExpiryScheduler:
    """The registry's expiry scheduler, on the test's clock, run by the test when it chooses."""
    settings = registry.runtime.settings
    return ExpiryScheduler(
        registry.sessions,
        ExpirySettings(**expiry),
        registry.clock,
        "/timpora/registry",
        topic=settings.kafka.catalog.registry_events.name,
        overstay=settings.overstay,
    )


async def published(registry: Registry, foreigner_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The events about a person in the outbox, in order: (name, payload)."""
    async with registry.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.partition_key == foreigner_id)
            .order_by(outbox.c.id)
        )
    return [(kind.removeprefix("id.timpora.").removesuffix(".v1"), json.loads(payload)) for kind, payload in rows]
