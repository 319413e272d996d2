"""Each service starts against the real stack and answers its operations endpoints."""

from __future__ import annotations

import gc

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url

from tests.support.stack import Stack
from timpora.alerts.main import create_app as alerts_app
from timpora.alerts.settings import AlertsSettings
from timpora.common.kafka.acls import service_topics
from timpora.common.kafka.admin import admin_client
from timpora.common.settings import DatabaseSettings, KafkaSettings, ServiceSettings
from timpora.portal.main import create_app as portal_app
from timpora.portal.settings import PortalSettings
from timpora.registry.main import create_app as registry_app
from timpora.registry.settings import RegistrySettings
from timpora.sharing.main import create_app as sharing_app
from timpora.sharing.settings import SharingSettings

APPS = {
    "registry": (RegistrySettings, registry_app),
    "alerts": (AlertsSettings, alerts_app),
    "sharing": (SharingSettings, sharing_app),
    "portal": (PortalSettings, portal_app),
}
#: The portal does not use Kafka: it starts, and is ready, with no broker at all.
WITHOUT_KAFKA = {"portal"}
#: The portal is web pages: it publishes no API document.
PAGES = {"portal"}
#: An address where nothing listens.
NO_BROKER = KafkaSettings(bootstrap_servers="127.0.0.1:1")


@pytest.mark.parametrize("service", list(APPS))
async def test_a_service_starts_and_answers_health_readiness_metrics_and_openapi(
    service: str, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    settings_class, create_app = APPS[service]
    kafka = NO_BROKER if service in WITHOUT_KAFKA else kafka_settings
    settings: ServiceSettings = settings_class(kafka=kafka, database=database_settings[service])
    app = create_app(settings)

    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
        openapi = await client.get("/openapi.json")
        # What the start made is out of the cycle collector's full passes (timpora.common.collector.start_spared).
        start_spared = not any(thing is app.router for thing in gc.get_objects())
    handed_back = any(thing is app.router for thing in gc.get_objects())

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": service}
    assert (start_spared, handed_back) == (True, True)
    assert ready.status_code == 200, ready.text
    if service in WITHOUT_KAFKA:
        assert ready.json()["checks"] == {"postgres": "ok"}
    else:
        assert ready.json()["checks"] == {"postgres": "ok", "kafka": "ok"}
    assert f'timpora_ready{{service="{service}"}} 1.0' in metrics.text
    if service in PAGES:
        # A service of pages has no API to document (its reference is built from app.openapi() all the same).
        assert openapi.status_code == 404
        assert app.openapi()["info"]["title"] == f"TIMPORA {service}"
    else:
        assert openapi.json()["info"]["title"] == f"TIMPORA {service}"


async def test_starting_a_service_creates_its_catalog_topics_with_their_settings_and_no_others(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    app = registry_app(RegistrySettings(kafka=kafka_settings, database=database_settings["registry"]))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        pass

    catalog = kafka_settings.catalog
    own = service_topics(catalog, "registry")
    admin = admin_client(kafka_settings)
    await admin.start()
    try:
        existing = {name for name in await admin.list_topics() if catalog.owns(name)}
        described = {topic["topic"]: topic for topic in await admin.describe_topics([s.name for s in own])}
    finally:
        await admin.close()
    # Each service makes only what it uses: on a locked-down broker it may create nothing else.
    assert existing == {spec.name for spec in own} == {catalog.registry_events.name}
    for spec in own:
        assert len(described[spec.name]["partitions"]) == spec.partitions


async def test_readiness_fails_while_the_database_refuses_the_service_and_recovers_after(
    stack: Stack, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    app = sharing_app(SharingSettings(kafka=kafka_settings, database=database_settings["sharing"]))
    admin = await asyncpg.connect(
        make_url(stack.pg_admin_url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        try:
            await admin.execute("ALTER ROLE timpora_test_sharing NOLOGIN")
            await app.state.runtime.engine.dispose()
            refused = await client.get("/readyz")
        finally:
            await admin.execute("ALTER ROLE timpora_test_sharing LOGIN")
            await admin.close()
        recovered = await client.get("/readyz")

    assert refused.status_code == 503
    assert refused.json()["checks"]["postgres"].startswith("failing")
    assert refused.json()["checks"]["kafka"] == "ok"
    assert recovered.status_code == 200
