"""The three services as `make run` starts them — real processes behind uvicorn, on the real Kafka and
PostgreSQL — with a key each accepts, for the tests of their HTTP edges (issue 11)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.kafka import delete_namespace, new_namespace
from tests.support.processes import ServiceProcess, start_service
from tests.support.stack import Stack
from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS
from timpora.common.access import KeyStore
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.registry.operators import add_operator
from timpora.sharing.access import KEYS as SHARING_KEYS

#: The services with a key-authenticated JSON API, whose edges these tests are about (401 before anything else,
#: per-address limits on requests without a valid key, schemathesis over the OpenAPI document). The portal is not
#: one: its officers log in through its pages, with no API key; its login throttling and sessions are tested in
#: tests/portal, and the one edge it shares with these, the body limit, in test_http_edges.py.
SERVICES = ("registry", "alerts", "sharing")
#: A member with an agreement covering what the tests read (the shipped register's police).
AGENCY = "polres-bangkalan"


@dataclass
class Running:
    service: str
    process: ServiceProcess
    #: A key for the operations of the service's main users (immigration staff, agencies).
    key: str
    #: A second key of the same kind, valid but never presented before a test presents it.
    unused_key: str = ""
    #: The operators' key where the service has a second kind (the alerts' admin API).
    operator_key: str | None = None

    @property
    def url(self) -> str:
        return self.process.url


def client_address() -> str:
    """A client address of a test's own: uvicorn takes X-Forwarded-For from a proxy on loopback (as the tests
    are), so each test is counted apart by the per-address limits."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def from_address(address: str | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": address or client_address()}


async def issue(database: DatabaseSettings, service: str, store: KeyStore, holder: str) -> str:
    engine = make_engine(database, application_name="timpora-tests", schema=service)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            _, key = await store.issue(session, holder)
    finally:
        await engine.dispose()
    return key


async def operator_token(database: DatabaseSettings) -> str:
    engine = make_engine(database, application_name="timpora-tests", schema="registry")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            return await add_operator(session, f"officer-{uuid.uuid4().hex[:8]}")
    finally:
        await engine.dispose()


async def start(
    service: str,
    kafka: KafkaSettings,
    databases: dict[str, DatabaseSettings],
    log: Path,
    extra: dict[str, str] | None = None,
) -> Running:
    process = start_service(service, kafka=kafka, database=databases[service], log=log, extra=extra)
    try:
        await process.ready()
        database = databases[service]
        if service == "registry":
            return Running(service, process, await operator_token(database), await operator_token(database))
        if service == "alerts":
            return Running(
                service,
                process,
                await issue(database, service, AGENCY_KEYS, AGENCY),
                await issue(database, service, AGENCY_KEYS, AGENCY),
                await issue(database, service, OPERATOR_KEYS, "edge-tests"),
            )
        keys = [await issue(database, service, SHARING_KEYS, AGENCY) for _ in range(2)]
        return Running(service, process, *keys)
    except BaseException:
        await process.stop()
        raise


@pytest.fixture(scope="module")
async def services(
    stack: Stack, database_settings: dict[str, DatabaseSettings], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Running]]:
    """The three services, started once for a module, under a Kafka namespace of its own."""
    kafka = stack.kafka.model_copy(update={"namespace": new_namespace()})
    logs = tmp_path_factory.mktemp("edges")
    running: dict[str, Running] = {}
    try:
        for service in SERVICES:
            running[service] = await start(service, kafka, database_settings, logs / f"{service}.log")
        yield running
    finally:
        for started in running.values():
            await started.process.stop()
        await delete_namespace(kafka)
