"""What every service process is made of: settings, a database engine, a Kafka broker and producer,
background workers, and an HTTP app whose lifespan starts and stops them in the right order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from timpora.common.clock import Clock, SystemClock
from timpora.common.collector import start_spared
from timpora.common.config_files import ConfigFileError
from timpora.common.db.engine import make_engine, make_session_factory, ping
from timpora.common.db.migrations import upgrade
from timpora.common.events.envelope import validation_problems
from timpora.common.http.auth import authentication_refusal
from timpora.common.http.errors import allowed_methods, document_edges
from timpora.common.http.health import ReadinessCheck, health_router
from timpora.common.http.limits import BodyLimit
from timpora.common.http.ratelimit import RateLimiter
from timpora.common.kafka.acls import service_topics
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.broker import make_broker
from timpora.common.kafka.producer import EventProducer
from timpora.common.logging import configure_logging
from timpora.common.settings import ServiceSettings, retired_in, settings_refused
from timpora.common.topics import TopicSpec

log = logging.getLogger(__name__)
#: The exit status uvicorn gives a process whose application did not start.
_STARTUP_FAILED = 3

#: A long-running job of a service (outbox relay, scheduler, delivery worker); runs until cancelled.
Worker = Callable[[], Awaitable[None]]
#: An extra ``timpora-<service> NAME ...`` command: gets the settings and the remaining arguments.
Command = Callable[[ServiceSettings, list[str]], Coroutine[Any, Any, int]]


class StartInterruptedError(RuntimeError):
    def __init__(self, service: str) -> None:
        super().__init__(f"{service} was asked to stop before it had started")


@dataclass
class ServiceRuntime:
    """The long-lived resources of one service process."""

    settings: ServiceSettings
    package: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: KafkaBroker
    producer: EventProducer
    clock: Clock = field(default_factory=SystemClock)
    #: The topics created at start when missing: the catalog's static topics, plus what a service's setup adds.
    topics: Sequence[TopicSpec] = ()
    workers: list[Worker] = field(default_factory=list)
    #: Checks and preparations run once at start, after the migrations; one that raises stops the start.
    startup: list[Worker] = field(default_factory=list)
    #: Run once at stop, after the workers are cancelled (closing clients the workers used).
    shutdown: list[Worker] = field(default_factory=list)
    #: What a service's setup hands to its routes (the alerts service's router and worker, ...), by name.
    state: dict[str, object] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Stop steps that outlived their time; kept referenced until they end (see ``stop``).
    _abandoned: set[asyncio.Task[Any]] = field(default_factory=set)
    #: Set by :meth:`request_stop` (SIGTERM): a start still waiting on a peer gives up.
    _stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: Whether the service talks to Kafka at all (the portal does not: it reads through the others' APIs). One that
    #: does not never connects, creates no topic and is ready without it.
    uses_kafka: bool = True

    @classmethod
    def create(
        cls,
        settings: ServiceSettings,
        *,
        package: str,
        description: str,
        clock: Clock | None = None,
        uses_kafka: bool = True,
    ) -> ServiceRuntime:
        client_id = f"timpora-{settings.service_name}"
        engine = make_engine(settings.database, application_name=client_id, schema=settings.service_name)
        return cls(
            settings=settings,
            package=package,
            engine=engine,
            sessions=make_session_factory(engine),
            broker=make_broker(
                settings.kafka,
                client_id=client_id,
                description=description,
                graceful_timeout_s=settings.shutdown.drain_s,
            ),
            producer=EventProducer(settings.kafka, client_id=client_id),
            clock=clock or SystemClock(),
            topics=service_topics(settings.kafka.catalog, settings.service_name) if uses_kafka else (),
            uses_kafka=uses_kafka,
        )

    @property
    def name(self) -> str:
        return self.settings.service_name

    async def migrate(self) -> None:
        await upgrade(self.engine, self.package, schema=self.name)

    def request_stop(self) -> None:
        """A stop was asked for (SIGTERM): a start still in progress gives up (see :meth:`start`)."""
        self._stop_requested.set()

    async def start(self) -> None:
        """Migrations, startup checks, topics, producer, consumers, workers.

        A start waits on PostgreSQL and Kafka, and a peer that does not answer keeps it waiting for a
        long time (asyncpg's connect timeout, Kafka's request timeout). A stop requested meanwhile cuts
        it short, and whatever had started is stopped, within the stop's own bounds; so is a start that
        fails half-way.
        """
        starting = asyncio.ensure_future(self._start())
        stop_requested = asyncio.ensure_future(self._stop_requested.wait())
        done, _ = await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        stop_requested.cancel()
        if starting not in done:
            self._abandon(starting)
            log.warning("service start cut short by a stop", extra={"service": self.name})
            await self.stop()
            raise StartInterruptedError(self.name)
        if (error := starting.exception()) is not None:
            await self.stop()
            raise error

    async def _start(self) -> None:
        await self.migrate()
        for step in self.startup:
            await step()
        if self.uses_kafka:
            await ensure_topics(self.settings.kafka, self.topics)
            await self.producer.start()
            await self.broker.start()
        self._tasks = [asyncio.create_task(self._supervise(worker)) for worker in self.workers]
        log.info("service started", extra={"service": self.name})

    async def stop(self) -> None:
        """Stops in bounded time, whatever Kafka and PostgreSQL are doing (``ShutdownSettings``).

        Every step gets a time limit, and the whole stop ``timeout_s``; a step that outlives its limit is
        abandoned, because a graceful wait trusts the other side to answer: a frozen broker never
        answers the consumer's LeaveGroup or the producer's flush, a database that is gone never answers
        a rollback, and a handler in the middle of a batch may be waiting on a lock. Abandoning them
        loses nothing. Events are consumed first and stopped first: the batch in flight gets
        ``drain_s`` to commit; if it does not, it is cancelled, its transaction rolls back, its offsets
        stay uncommitted, and Kafka delivers it again to whoever consumes next (the inbox drops what was
        already applied). A relay batch cut short is sent again; a delivery cut short is retried after
        its lease.
        """
        limits = self.settings.shutdown
        began = time.monotonic()
        deadline = began + limits.timeout_s
        log.info("service stopping", extra={"service": self.name})
        # FastStream waits ``graceful_timeout`` (= drain_s) for the handler in flight, then cancels it
        # and closes the consumer, which leaves the group: the step allows for both.
        if self.uses_kafka:
            await self._bounded("consumer", self.broker.stop(), limits.drain_s + limits.step_s, deadline)
        for task in self._tasks:
            task.cancel()
        await self._bounded("workers", self._cancelled_workers(), limits.step_s, deadline)
        for step in self.shutdown:
            await self._bounded(getattr(step, "__qualname__", "shutdown hook"), step(), limits.step_s, deadline)
        if self.uses_kafka:
            await self._bounded("producer", self.producer.stop(), limits.step_s, deadline)
        await self._bounded("database", self.engine.dispose(), limits.step_s, deadline)
        log.info(
            "service stopped",
            extra={
                "service": self.name,
                "duration_ms": round((time.monotonic() - began) * 1000),
                "count": len(self._abandoned),
            },
        )

    async def _cancelled_workers(self) -> None:
        for outcome in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning(
                    "worker failed while stopping", extra={"service": self.name, "reason": type(outcome).__name__}
                )

    async def _bounded(self, step: str, work: Awaitable[object], limit_s: float, deadline: float) -> None:
        """Runs ``work`` for at most ``limit_s`` and never past ``deadline``. Not ``asyncio.wait_for``: that
        waits for the cancelled work to finish cancelling, and work stuck in a ``finally`` that talks to
        a frozen peer never does."""
        task = asyncio.ensure_future(work)
        allowed = max(0.0, min(limit_s, deadline - time.monotonic()))
        done, _ = await asyncio.wait({task}, timeout=allowed)
        if task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning(
                    "stop step failed", extra={"service": self.name, "step": step, "reason": type(error).__name__}
                )
            return
        log.warning("stop step abandoned", extra={"service": self.name, "step": step, "seconds": round(allowed, 1)})
        self._abandon(task)

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _supervise(self, worker: Worker) -> None:
        # A worker that crashes is restarted after a pause rather than silently gone: the relay and
        # the scheduler must keep running for the process to be worth its /healthz.
        while True:
            try:
                await worker()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker failed; restarting in 5 s", extra={"service": self.name})
                await asyncio.sleep(5)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def kafka() -> None:
            if not await self.broker.ping(timeout=2.0):
                raise ConnectionError("Kafka did not answer")

        async def postgres() -> None:
            await ping(self.engine)

        return {"postgres": postgres, "kafka": kafka} if self.uses_kafka else {"postgres": postgres}


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    larger_bodies: Mapping[str, int] | None = None,
    api_docs: bool = True,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            with start_spared():
                yield
        finally:
            await runtime.stop()

    # An API's documentation pages are its own; a service of web pages (the portal) has none: Swagger UI's script
    # comes from a CDN its Content-Security-Policy forbids, and its pages are not an API.
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
        openapi_url="/openapi.json" if api_docs else None,
    )
    app.state.runtime = runtime
    app.state.unauthenticated_limiter = RateLimiter[str](per_minute=runtime.settings.http.unauthenticated_per_minute)
    app.add_middleware(
        BodyLimit,
        max_bytes=runtime.settings.http.max_body_bytes,
        timeout_s=runtime.settings.http.body_timeout_s,
        larger=larger_bodies,
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _refused)
    app.include_router(health_router(runtime.name, runtime.readiness_checks()))
    for router in routers:
        app.include_router(router)
    document_edges(app)
    return app


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, field by field, without echoing the values sent: they may be a secret or a passport number.
    A body that does not parse is refused before the operation's dependencies run: an operation that needs a key
    answers a request without one 401 all the same."""
    if not isinstance(error, RequestValidationError):
        raise error
    if (refusal := await authentication_refusal(request)) is not None:
        return refusal
    return JSONResponse({"detail": validation_problems(error.errors())}, status_code=422)


async def _refused(request: Request, error: Exception) -> Response:
    """FastAPI's own answer to an HTTP error, but for the one 400 it gives, a body it could not read (not UTF-8,
    say): that is an unauthenticated request's 401 (see :func:`_invalid_request`), and otherwise a 422 at the
    body, as a body that is not JSON is: one answer, documented, for a body that cannot be read."""
    if not isinstance(error, HTTPException):
        raise error
    if error.status_code == status.HTTP_400_BAD_REQUEST:
        if (refusal := await authentication_refusal(request)) is not None:
            return refusal
        unreadable = {"loc": ["body"], "msg": "the body is not JSON in UTF-8", "type": "json_invalid"}
        return JSONResponse({"detail": [unreadable]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED and isinstance(request.app, FastAPI):
        methods = allowed_methods(request.app, request.url.path)
        if methods is not None:
            error = HTTPException(error.status_code, error.detail, headers={"Allow": ", ".join(methods)})
    return await http_exception_handler(request, error)


def _no_routers(_: ServiceRuntime) -> Sequence[APIRouter]:
    return ()


def _no_setup(_: ServiceRuntime) -> None:
    return None


def _no_app_setup(_: FastAPI) -> None:
    return None


def _no_larger_bodies(_: ServiceSettings) -> Mapping[str, int]:
    return {}


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service: its name, texts, settings, HTTP routes, workers and commands.

    Each service's ``main.py`` declares one, and takes ``create_app`` and ``main`` from it.
    """

    name: str
    title: str
    description: str
    settings_class: Callable[[], ServiceSettings]
    routers: Callable[[ServiceRuntime], Sequence[APIRouter]] = _no_routers
    #: Wires consumers, publishers and workers onto a fresh runtime, before it starts.
    setup: Callable[[ServiceRuntime], None] = _no_setup
    commands: Mapping[str, Command] = field(default_factory=dict)
    #: Adds what the routers alone cannot: exception handlers, middleware.
    app_setup: Callable[[FastAPI], None] = _no_app_setup
    #: Whether the service talks to Kafka (see ``ServiceRuntime.uses_kafka``).
    uses_kafka: bool = True
    #: Whether the service serves its API's documentation pages (/docs, /redoc).
    api_docs: bool = True
    #: The paths whose request bodies may be larger than ``HttpSettings.max_body_bytes`` (a photo), and how large.
    larger_bodies: Callable[[ServiceSettings], Mapping[str, int]] = _no_larger_bodies

    @property
    def package(self) -> str:
        return f"timpora.{self.name}"

    def create_runtime(self, settings: ServiceSettings | None = None, *, clock: Clock | None = None) -> ServiceRuntime:
        runtime = ServiceRuntime.create(
            settings or self.settings_class(),
            package=self.package,
            description=self.description,
            clock=clock,
            uses_kafka=self.uses_kafka,
        )
        self.setup(runtime)
        return runtime

    def create_app(self, settings: ServiceSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
        runtime = self.create_runtime(settings, clock=clock)
        app = create_service_app(
            runtime,
            title=self.title,
            description=self.description,
            routers=self.routers(runtime),
            larger_bodies=self.larger_bodies(runtime.settings),
            api_docs=self.api_docs,
        )
        self.app_setup(app)
        return app

    def main(self, argv: list[str] | None = None) -> int:
        """``timpora-<service> serve`` (the default), ``migrate``, or one of the service's own commands."""
        parser = argparse.ArgumentParser(prog=f"timpora-{self.name}", description=self.description)
        parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", *self.commands])
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's own arguments")
        args = parser.parse_args(argv)
        if retired := retired_in(os.environ):
            sys.stderr.write("".join(f"timpora-{self.name}: {line}\n" for line in retired))
            return 2
        try:
            settings = self.settings_class()
        except ValidationError as error:
            # One line per setting at fault, naming it and why; never the value (it may be a password).
            sys.stderr.write("".join(f"timpora-{self.name}: {line}\n" for line in settings_refused(error)))
            return 2
        stream = sys.stdout if args.command == "serve" else sys.stderr
        configure_logging(self.name, level=settings.log_level, json_output=settings.log_json, stream=stream)
        if args.command == "serve":
            try:
                app = self.create_app(settings)
            except ConfigFileError as error:
                # A file the operator keeps (the register, the rules) is wrong: one line saying where and why.
                sys.stderr.write(f"timpora-{self.name}: {error}\n")
                return 2
            _Server(server_config(app, settings), app.state.runtime).run()
            return 0
        if args.command == "migrate":
            asyncio.run(self._migrate(settings))
            return 0
        return asyncio.run(self.commands[args.command](settings, list(args.arguments)))

    async def _migrate(self, settings: ServiceSettings) -> None:
        runtime = ServiceRuntime.create(
            settings, package=self.package, description=self.description, uses_kafka=self.uses_kafka
        )
        try:
            await runtime.migrate()
        finally:
            await runtime.engine.dispose()


#: The event loop the services' servers run on (see :func:`server_config`); the benchmarks' raw servers run on it too.
EVENT_LOOP = "asyncio"


def server_config(app: FastAPI, settings: ServiceSettings) -> uvicorn.Config:
    """How a service's HTTP server runs."""
    return uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,
        access_log=False,
        limit_concurrency=settings.http.max_connections,
        proxy_headers=True,
        forwarded_allow_ips=settings.http.forwarded_allow_ips,
        # Requests still running after this long are cut short on SIGTERM (see ShutdownSettings).
        timeout_graceful_shutdown=math.ceil(settings.shutdown.drain_s),
        # Python's own event loop, not uvloop: writing to a connection the peer has reset raises RuntimeError under
        # uvloop where asyncio's raises nothing (the reader then fails the request), and aiokafka catches only
        # connection errors (aio-libs/aiokafka#1038). Checked: a reset of the Kafka connections (tests/faults) left
        # a sharing consumer's group coordination dead under uvloop, "Kafka error occurred" every 5 s until stopped.
        loop=EVENT_LOOP,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, told two things more about stopping.

    uvicorn notes SIGTERM but looks at it only once the application has started; a start waiting on a
    peer that does not answer would hold the process for as long as its timeouts. Here the signal also
    reaches the runtime, which cuts the start short. And once uvicorn has stopped, the process ends at
    once: uvicorn re-raises SIGTERM to end it, but a process that ignores SIGTERM (PID 1 in a
    container) would go on to asyncio's own teardown, which waits, without a bound, for the stop steps
    the runtime abandoned.
    """

    def __init__(self, config: uvicorn.Config, runtime: ServiceRuntime) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if self.started else _STARTUP_FAILED)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            # A signal handler runs between two bytecodes of whatever the loop was doing: hand over safely.
            self._loop.call_soon_threadsafe(self._runtime.request_stop)
