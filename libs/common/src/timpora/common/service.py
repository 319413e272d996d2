"""What every service process is made of: settings, a database engine, a Kafka broker, and an HTTP app
whose lifespan starts and stops them in the right order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from timpora.common.db.engine import make_engine, make_session_factory, ping
from timpora.common.db.migrations import upgrade
from timpora.common.http.health import ReadinessCheck, health_router
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.broker import make_broker
from timpora.common.logging import configure_logging
from timpora.common.settings import ServiceSettings
from timpora.common.topics import STATIC_TOPICS, TopicSpec

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """The long-lived resources of one service process."""

    settings: ServiceSettings
    package: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: KafkaBroker
    topics: Sequence[TopicSpec] = field(default_factory=lambda: STATIC_TOPICS)

    @classmethod
    def create(cls, settings: ServiceSettings, *, package: str, description: str) -> ServiceRuntime:
        engine = make_engine(
            settings.database, application_name=f"timpora-{settings.service_name}", schema=settings.service_name
        )
        return cls(
            settings=settings,
            package=package,
            engine=engine,
            sessions=make_session_factory(engine),
            broker=make_broker(settings.kafka, client_id=f"timpora-{settings.service_name}", description=description),
        )

    @property
    def name(self) -> str:
        return self.settings.service_name

    async def migrate(self) -> None:
        await upgrade(self.engine, self.package, schema=self.name)

    async def start(self) -> None:
        await self.migrate()
        await ensure_topics(self.settings.kafka, self.topics)
        await self.broker.start()
        log.info("service started", extra={"service": self.name})

    async def stop(self) -> None:
        await self.broker.stop()
        await self.engine.dispose()
        log.info("service stopped", extra={"service": self.name})

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def kafka() -> None:
            if not await self.broker.ping(timeout=2.0):
                raise ConnectionError("Kafka did not answer")

        async def postgres() -> None:
            await ping(self.engine)

        return {"postgres": postgres, "kafka": kafka}


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(health_router(runtime.name, runtime.readiness_checks()))
    for router in routers:
        app.include_router(router)
    return app


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service: its name, package, texts, settings and HTTP routes.

    Each service's ``main.py`` declares one, and takes ``create_app`` and ``main`` from it.
    """

    name: str
    title: str
    description: str
    settings_class: Callable[[], ServiceSettings]
    routers: Callable[[ServiceRuntime], Sequence[APIRouter]] = lambda _: ()

    @property
    def package(self) -> str:
        return f"timpora.{self.name}"

    def create_runtime(self, settings: ServiceSettings | None = None) -> ServiceRuntime:
        return ServiceRuntime.create(
            settings or self.settings_class(), package=self.package, description=self.description
        )

    def create_app(self, settings: ServiceSettings | None = None) -> FastAPI:
        runtime = self.create_runtime(settings)
        return create_service_app(
            runtime, title=self.title, description=self.description, routers=self.routers(runtime)
        )

    def main(self, argv: list[str] | None = None) -> int:
        """``timpora-<service> serve`` (the default) or ``timpora-<service> migrate``."""
        parser = argparse.ArgumentParser(prog=f"timpora-{self.name}", description=self.description)
        parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
        args = parser.parse_args(argv)
        settings = self.settings_class()
        configure_logging(self.name, level=settings.log_level, json_output=settings.log_json)
        if args.command == "migrate":
            asyncio.run(self._migrate(settings))
            return 0
        uvicorn.run(
            self.create_app(settings),
            host=settings.http.host,
            port=settings.http.port,
            log_config=None,
            access_log=False,
        )
        return 0

    async def _migrate(self, settings: ServiceSettings) -> None:
        runtime = self.create_runtime(settings)
        try:
            await runtime.migrate()
        finally:
            await runtime.engine.dispose()
