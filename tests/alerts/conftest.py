"""An alerts service under test: the real app with its Kafka consumer and PostgreSQL, a real webhook
receiver and a real SMTP server, a clock the test moves, and delivery run by the test's hand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select

from tests.support import register as register_variants
from tests.support.clock import ManualClock
from tests.support.queue import empty_queue
from tests.support.receivers import (
    LOCALHOST,
    RECEIVERS_NETWORK,
    SmtpReceiver,
    WebhookReceiver,
    smtp_receiver,
    webhook_receiver,
)
from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS
from timpora.alerts.alerting import Alerting
from timpora.alerts.channels.email import SmtpSettings
from timpora.alerts.channels.webhook import new_secret
from timpora.alerts.delivery import DeliveryWorker
from timpora.alerts.domain import rules
from timpora.alerts.main import SERVICE
from timpora.alerts.models import alerts, deliveries, routed_events
from timpora.alerts.settings import AlertsSettings, DeliverySettings, LifecycleSettings
from timpora.common import register
from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract
from timpora.common.register.destinations import ALLOWED_NETWORKS_VARIABLE
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings

#: Emptied for each test besides the delivery queue.
_PER_TEST_TABLES = ("alerts", "routed_events", "agency_keys")
SECRET_VARIABLE = "TIMPORA_TEST_POLRES_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable
#: 07:00 in Bangkalan (WIB): an hour before the default digest time.
START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@dataclass
class AlertsUnderTest:
    app: FastAPI
    client: AsyncClient
    runtime: ServiceRuntime
    alerting: Alerting
    worker: DeliveryWorker
    clock: ManualClock
    webhook: WebhookReceiver
    smtp: SmtpReceiver
    topic: str
    secret: str
    rules_file: Path
    register_file: Path
    keys: dict[str, str]
    operator: str

    async def publish(self, *events: CloudEvent[Contract]) -> None:
        for event in events:
            await self.runtime.producer.publish(self.topic, event)

    async def routed(self, *events: CloudEvent[Contract], timeout_s: float = 30.0) -> None:
        """Waits until the consumer has committed each event's alerts."""
        wanted = {uuid.UUID(event.id) for event in events}
        async with asyncio.timeout(timeout_s):
            while True:
                async with self.runtime.sessions() as session:
                    found = set(
                        (
                            await session.execute(
                                select(routed_events.c.event_id).where(routed_events.c.event_id.in_(wanted))
                            )
                        ).scalars()
                    )
                if found == wanted:
                    return
                await asyncio.sleep(0.05)

    async def send(self, *events: CloudEvent[Contract]) -> None:
        await self.publish(*events)
        await self.routed(*events)

    async def deliver(self) -> int:
        """Runs the delivery worker until nothing is due at the test clock's time."""
        total = 0
        while handled := await self.worker.run_once():
            total += handled
        return total

    async def alerts_about(self, foreigner_id: uuid.UUID) -> list[Any]:
        async with self.runtime.sessions() as session:
            statement = select(alerts).where(alerts.c.foreigner_id == foreigner_id).order_by(alerts.c.created_at)
            return list((await session.execute(statement)).all())

    async def deliveries_of(self, alert_id: uuid.UUID) -> list[Any]:
        async with self.runtime.sessions() as session:
            statement = select(deliveries).where(deliveries.c.alert_id == alert_id).order_by(deliveries.c.id)
            return list((await session.execute(statement)).all())

    async def as_agency(self, agency: str, method: str, path: str, **kwargs: Any) -> Response:
        headers = {"Authorization": f"Bearer {self.keys[agency]}"}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def change_register(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Edits the register the service reads, and waits until the service has taken it (as it does within a
        second of any change, without a restart)."""
        document = yaml.safe_load(self.register_file.read_text(encoding="utf-8"))
        change(document)
        register_variants.write(self.register_file, document)
        wanted = register.load(self.register_file).digest
        async with asyncio.timeout(10):
            while self.alerting.directory_cache.synced != wanted:
                await self.alerting.directory_cache.sync()
                await asyncio.sleep(0.05)

    async def as_operator(self, method: str, path: str, **kwargs: Any) -> Response:
        return await self.client.request(method, path, headers={"Authorization": f"Bearer {self.operator}"}, **kwargs)


def _register_file(tmp_path: Path, webhook_url: str) -> Path:
    document = register_variants.ungrouped(register_variants.shipped())
    register_variants.member(document, "polres-bangkalan")["channels"]["webhook"] = {
        "url": webhook_url,
        "secret_env": SECRET_VARIABLE,
    }
    return register_variants.write(tmp_path / "register.yaml", document)


@pytest.fixture
def webhook_networks() -> str:
    """The networks the operator allows webhooks into (``TIMPORA_WEBHOOK_ALLOWED_NETWORKS``): the test's receivers
    listen on loopback, which webhooks reach only where an operator allows it."""
    return RECEIVERS_NETWORK


@pytest.fixture
def webhook_host() -> str:
    """The host the police's webhook URL names (the receiver listens on 127.0.0.1)."""
    return LOCALHOST


@pytest.fixture
async def service(
    kafka_settings: KafkaSettings,
    database_settings: dict[str, DatabaseSettings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    webhook_networks: str,
    webhook_host: str,
) -> AsyncIterator[AlertsUnderTest]:
    secret = new_secret()
    monkeypatch.setenv(SECRET_VARIABLE, secret)
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, webhook_networks)
    topic = kafka_settings.catalog.registry_events.name
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_bytes(rules.DEFAULT_RULES.read_bytes())
    async with webhook_receiver() as webhook, smtp_receiver() as smtp:
        settings = AlertsSettings(
            kafka=kafka_settings,
            database=database_settings["alerts"],
            register_file=_register_file(tmp_path, webhook.url.replace(LOCALHOST, webhook_host, 1)),
            rules_file=rules_file,
            smtp=SmtpSettings(host=smtp.host, port=smtp.port),
            # The test runs delivery, escalation and digests itself, at the times its clock says.
            delivery=DeliverySettings(enabled=False, webhook_timeout_s=2.0),
            lifecycle=LifecycleSettings(tick_s=3600),
        )
        clock = ManualClock(START)
        app = SERVICE.create_app(settings, clock=clock)
        runtime: ServiceRuntime = app.state.runtime
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
            async with runtime.sessions() as session, session.begin():
                # Each test starts from an empty queue: another test's retries must not land in this one's receivers.
                await empty_queue(session, *_PER_TEST_TABLES)
                keys = {
                    agency: (await AGENCY_KEYS.issue(session, agency))[1]
                    for agency in ("desa-lajing", "polres-bangkalan", "kanim-pamekasan", "pemkab-bangkalan")
                }
                operator = (await OPERATOR_KEYS.issue(session, "test-operator"))[1]
            runtime.state["alerting"].directory_cache.invalidate()  # type: ignore[attr-defined]
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://alerts") as client:
                yield AlertsUnderTest(
                    app=app,
                    client=client,
                    runtime=runtime,
                    alerting=runtime.state["alerting"],  # type: ignore[arg-type]
                    worker=runtime.state["delivery"],  # type: ignore[arg-type]
                    clock=clock,
                    webhook=webhook,
                    smtp=smtp,
                    topic=topic,
                    secret=secret,
                    rules_file=rules_file,
                    register_file=settings.register_file,
                    keys=keys,
                    operator=operator,
                )
