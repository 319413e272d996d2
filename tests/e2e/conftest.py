"""The whole platform in one test: the registry (API, outbox relay), alerts and sharing, as `make run` wires
them — one Kafka namespace, one PostgreSQL database — on one clock the test moves by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select, text

from tests.support import register as register_variants
from tests.support.clock import ManualClock
from tests.support.kafka import service_principals
from tests.support.queue import empty_queue
from tests.support.receivers import (
    RECEIVERS_NETWORK,
    SmtpReceiver,
    WebhookReceiver,
    smtp_receiver,
    webhook_receiver,
)
from tests.support.stack import Stack
from tests.support.waiting import until
from timpora.alerts.channels.email import SmtpSettings
from timpora.alerts.channels.webhook import new_secret
from timpora.alerts.delivery import DeliveryWorker
from timpora.alerts.main import SERVICE as ALERTS
from timpora.alerts.models import alerts, routed_events
from timpora.alerts.settings import AlertsSettings, DeliverySettings, LifecycleSettings
from timpora.common.db.bootstrap import fresh_database
from timpora.common.register.destinations import ALLOWED_NETWORKS_VARIABLE
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings, RelaySettings
from timpora.registry.expiry import ExpiryScheduler
from timpora.registry.main import SERVICE as REGISTRY
from timpora.registry.models import outbox
from timpora.registry.operators import add_operator
from timpora.registry.settings import ExpirySettings, RegistrySettings
from timpora.sharing import access
from timpora.sharing.main import SERVICE as SHARING
from timpora.sharing.models import inbox as sharing_inbox
from timpora.sharing.models import outbox as sharing_outbox
from timpora.sharing.settings import SharingSettings

#: Noon in Bangkalan.
START = datetime(2026, 2, 1, 5, 0, tzinfo=UTC)
AGENCIES = ("pemkab-bangkalan", "polres-bangkalan", "desa-lajing")
#: A member of the team with no data-sharing agreement (yet): it must receive nothing about anyone.
WITHOUT_AGREEMENT = "bin-jatim"
#: The grouped platform's database (and its roles' prefix).
GROUPED_DATABASE = "timpora_test_grouped"
WEBHOOK_SECRET_VARIABLE = "TIMPORA_E2E_POLRES_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable


def _register(
    path: Path,
    webhook_url: str,
    grouping: Callable[[dict[str, Any]], dict[str, Any]] = register_variants.ungrouped,
) -> Path:
    """The shipped register, with the police reached by webhook too, and a member without an agreement; one
    message per notice unless ``grouping`` says otherwise (grouping has tests of its own)."""
    document = register_variants.shipped()
    police = register_variants.member(document, "polres-bangkalan")
    police["channels"]["webhook"] = {"url": webhook_url, "secret_env": WEBHOOK_SECRET_VARIABLE}
    document["members"].append(
        {
            "id": WITHOUT_AGREEMENT,
            "name": "Badan Intelijen Negara Daerah Jawa Timur",
            "kind": "intelligence",
            "jurisdiction": ["35"],
            "channels": {"emails": ["binda@jatim.timpora.example"], "kafka": True},
            "escalation_contacts": ["kabinda@jatim.timpora.example"],
        }
    )
    return register_variants.write(path, grouping(document))


@dataclass
class Platform:
    clock: ManualClock
    registry: AsyncClient
    sharing: AsyncClient
    runtimes: dict[str, ServiceRuntime]
    scheduler: ExpiryScheduler
    keys: dict[str, str]
    webhook: WebhookReceiver
    smtp: SmtpReceiver
    webhook_secret: str
    register_file: Path

    async def write(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.registry.request(method, path, json=body)
        assert response.status_code in {200, 201}, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def as_agency(self, agency: str, path: str, **params: Any) -> Response:
        return await self.sharing.get(path, params=params, headers={"Authorization": f"Bearer {self.keys[agency]}"})

    async def settled(self, timeout_s: float = 60.0) -> None:
        """Waits until alerts and sharing have applied every event the registry committed in this test's
        namespace (the test database keeps other tests' rows, whose topics are gone)."""
        namespace = self.runtimes["registry"].settings.kafka.namespace
        async with self.runtimes["registry"].sessions() as session:
            ours = select(outbox.c.event_id).where(outbox.c.topic.startswith(f"{namespace}."))
            wanted = set((await session.execute(ours)).scalars())

        async def applied() -> bool:
            routed = select(func.count()).where(routed_events.c.event_id.in_(wanted))
            projected = select(func.count()).where(sharing_inbox.c.event_id.in_([str(event) for event in wanted]))
            return min(await self._count("alerts", routed), await self._count("sharing", projected)) >= len(wanted)

        await until(applied, what="alerts and sharing applied every event", timeout_s=timeout_s)

    async def published(self) -> None:
        """Waits until the sharing relay has published every agency's records of this test's namespace."""
        namespace = self.runtimes["sharing"].settings.kafka.namespace

        async def drained() -> bool:
            # Every row in the sharing outbox is one not yet published (timpora.common.outbox.table, version 3).
            waiting = select(func.count()).where(sharing_outbox.c.topic.startswith(f"{namespace}."))
            return await self._count("sharing", waiting) == 0

        await until(drained, what="the sharing relay published every agency's records")

    async def deliver(self) -> None:
        """Runs the alerts' delivery worker until nothing is due at the test clock's time."""
        worker = self.runtimes["alerts"].state["delivery"]
        assert isinstance(worker, DeliveryWorker)
        while await worker.run_once():
            pass

    async def _count(self, service: str, statement: Any) -> int:
        async with self.runtimes[service].sessions() as session:
            return int(await session.scalar(statement) or 0)

    async def alerts_about(self, foreigner_id: str) -> list[Any]:
        async with self.runtimes["alerts"].sessions() as session:
            statement = select(alerts).where(alerts.c.foreigner_id == uuid.UUID(foreigner_id))
            return list((await session.execute(statement)).all())


@pytest.fixture
async def platform(
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Platform]:
    """The platform, one message per notice."""
    async for platform in _started(
        kafka_settings, database_settings, tmp_path, monkeypatch, register_variants.ungrouped
    ):
        yield platform


@pytest.fixture
async def grouped_platform(
    kafka_settings: KafkaSettings, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Platform]:
    """The same platform with every member's notices grouped at the register's defaults (issue 17), on a database
    of its own: the thousands of people a storm imports must not be in the other tests' expiry passes."""
    urls = await fresh_database(stack.pg_admin_url, GROUPED_DATABASE, role_prefix=GROUPED_DATABASE)
    databases = {name: DatabaseSettings(url=url, pool_size=5) for name, url in urls.items()}
    async for platform in _started(kafka_settings, databases, tmp_path, monkeypatch, register_variants.grouped):
        yield platform


async def _started(
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grouping: Callable[[dict[str, Any]], dict[str, Any]],
) -> AsyncIterator[Platform]:
    """The platform on the register ``grouping`` makes, from an empty delivery queue (tests/support/queue.py)."""
    secret = new_secret()
    monkeypatch.setenv(WEBHOOK_SECRET_VARIABLE, secret)
    # The test's receivers listen on loopback, which webhooks reach only where an operator allows it.
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, RECEIVERS_NETWORK)
    async with webhook_receiver() as webhook, smtp_receiver() as smtp:
        register_file = _register(tmp_path / "register.yaml", webhook.url, grouping)
        async for platform in _platform(kafka_settings, database_settings, register_file, webhook, smtp):
            async with platform.runtimes["alerts"].sessions() as session, session.begin():
                await empty_queue(session)
            platform.runtimes["alerts"].state["alerting"].directory_cache.invalidate()  # type: ignore[attr-defined]
            platform.webhook_secret = secret
            yield platform


async def _platform(
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    register_file: Path,
    webhook: WebhookReceiver,
    smtp: SmtpReceiver,
) -> AsyncIterator[Platform]:
    clock = ManualClock(START)
    # Each service as its own Kafka principal with only its own rules (on the locked-down local stack): every
    # e2e test shows the services can do their work with nothing more.
    principals = await service_principals(kafka_settings)
    registry_settings = RegistrySettings(
        kafka=principals["registry"],
        database=database_settings["registry"],
        relay=RelaySettings(poll_interval_s=0.2),
        expiry=ExpirySettings(enabled=False),  # the test runs the scheduler at the times it chooses
    )
    alerts_settings = AlertsSettings(
        kafka=principals["alerts"],
        database=database_settings["alerts"],
        register_file=register_file,
        smtp=SmtpSettings(host=smtp.host, port=smtp.port),
        # The test delivers, escalates and sends digests itself, at the times its clock says.
        delivery=DeliverySettings(enabled=False, webhook_timeout_s=2.0),
        lifecycle=LifecycleSettings(tick_s=3600),
    )
    sharing_settings = SharingSettings(
        kafka=principals["sharing"],
        database=database_settings["sharing"],
        register_file=register_file,
        relay=RelaySettings(poll_interval_s=0.2),
    )
    apps = {
        "registry": REGISTRY.create_app(registry_settings, clock=clock),
        "alerts": ALERTS.create_app(alerts_settings, clock=clock),
        "sharing": SHARING.create_app(sharing_settings, clock=clock),
    }
    runtimes: dict[str, ServiceRuntime] = {name: app.state.runtime for name, app in apps.items()}
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(LifespanManager(app, startup_timeout=60, shutdown_timeout=30))
        async with runtimes["sharing"].sessions() as session, session.begin():
            # Pages start empty of what earlier tests projected.
            await session.execute(text("TRUNCATE projections"))
            # A key for the member without an agreement too, as if issued before it lapsed: it must read nothing.
            keys = {agency: (await access.KEYS.issue(session, agency))[1] for agency in (*AGENCIES, WITHOUT_AGREEMENT)}
        async with runtimes["registry"].sessions() as session, session.begin():
            token = await add_operator(session, f"officer-{uuid.uuid4().hex[:8]}")
        registry = await stack.enter_async_context(
            AsyncClient(
                transport=ASGITransport(app=apps["registry"]),
                base_url="http://registry",
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        sharing = await stack.enter_async_context(
            AsyncClient(transport=ASGITransport(app=apps["sharing"]), base_url="http://sharing")
        )
        scheduler = ExpiryScheduler(
            runtimes["registry"].sessions,
            ExpirySettings(),
            clock,
            registry_settings.event_source,
            topic=kafka_settings.catalog.registry_events.name,
            overstay=registry_settings.overstay,
        )
        yield Platform(clock, registry, sharing, runtimes, scheduler, keys, webhook, smtp, "", register_file)
