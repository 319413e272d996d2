"""``timpora-registry`` commands beyond serve and migrate: operators and the outbox."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from timpora.common.clock import SystemClock
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import ServiceSettings
from timpora.registry.operators import add_operator, disable_operator
from timpora.registry.relay import OutboxRelay
from timpora.registry.settings import RegistrySettings


def _registry(settings: ServiceSettings) -> RegistrySettings:
    if not isinstance(settings, RegistrySettings):
        raise TypeError("registry commands need RegistrySettings")
    return settings


async def operators(settings: ServiceSettings, argv: list[str]) -> int:
    """``operators add NAME`` prints the new operator's token once; ``operators disable NAME``."""
    parser = argparse.ArgumentParser(prog="timpora-registry operators")
    parser.add_argument("action", choices=["add", "disable"])
    parser.add_argument("name")
    args = parser.parse_args(argv)
    engine = make_engine(settings.database, application_name="timpora-registry-cli", schema="registry")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action == "add":
                token = await add_operator(session, args.name)
                sys.stdout.write(f"{token}\n")
                sys.stderr.write(f"operator {args.name} added; the token above is shown only this once\n")
                return 0
            if not await disable_operator(session, args.name):
                sys.stderr.write(f"no operator named {args.name}\n")
                return 1
            return 0
    finally:
        await engine.dispose()


async def outbox(settings: ServiceSettings, argv: list[str]) -> int:
    """``outbox republish --since T [--until T]``: send the events of a period again."""
    parser = argparse.ArgumentParser(prog="timpora-registry outbox")
    parser.add_argument("action", choices=["republish"])
    parser.add_argument(
        "--since", type=datetime.fromisoformat, required=True, help="ISO time, e.g. 2026-11-01T00:00+07:00"
    )
    parser.add_argument("--until", type=datetime.fromisoformat, default=None)
    args = parser.parse_args(argv)
    registry = _registry(settings)
    engine = make_engine(registry.database, application_name="timpora-registry-cli", schema="registry")
    relay = OutboxRelay(
        engine, EventProducer(registry.kafka, client_id="timpora-registry-cli"), registry.relay, SystemClock()
    )
    try:
        count = await relay.republish(since=args.since, until=args.until or datetime.now(UTC))
    finally:
        await engine.dispose()
    sys.stderr.write(f"{count} events marked for publishing again; a running relay sends them\n")
    return 0


async def relay(settings: ServiceSettings, argv: list[str]) -> int:
    """``relay``: run only the outbox relay, in the foreground (for a dedicated relay process)."""
    argparse.ArgumentParser(prog="timpora-registry relay").parse_args(argv)
    registry = _registry(settings)
    engine = make_engine(registry.database, application_name="timpora-registry-relay", schema="registry")
    producer = EventProducer(registry.kafka, client_id="timpora-registry-relay")
    await producer.start()
    try:
        await OutboxRelay(engine, producer, registry.relay, SystemClock()).run()
    finally:
        await producer.stop()
        await engine.dispose()
    return 0
