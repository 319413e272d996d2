"""``timpora-registry`` commands beyond serve and migrate: operators, the outbox, the relay on its own,
bulk import, synthetic data, the demo's lifecycle stories and a scheduler pass."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from timpora.common import audit, register
from timpora.common.access import key_command
from timpora.common.clock import SystemClock
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.kafka.producer import EventProducer
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.settings import ServiceSettings, narrow
from timpora.registry.access import PORTAL_KEYS
from timpora.registry.bulk.generator import generate, write
from timpora.registry.bulk.importer import ImportBatchError, Importer, Summary
from timpora.registry.bulk.records import read
from timpora.registry.bulk.rejects import rejects_file
from timpora.registry.bulk.stories import DEMO_SEED, play
from timpora.registry.domain.areas import Area
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.expiry import ExpiryScheduler
from timpora.registry.operators import add_operator, disable_operator
from timpora.registry.settings import RegistrySettings


def _office_refusal(settings: RegistrySettings, office: str | None) -> str | None:
    """Why an operator of ``office`` may not be added (None: they may)."""
    offices = register.current(settings.register_file).offices
    if office is None:
        if len(offices) > 1:
            names = ", ".join(sorted(member.id for member in offices))
            return f"the register has several immigration offices ({names}): say whose staff this is with --office"
        return None
    if office not in {member.id for member in offices}:
        return f"{office} is not an immigration office (a controller) in the register {settings.register_file}"
    return None


def _area(settings: RegistrySettings, office: str | None) -> Area | None:
    member = None if office is None else register.current(settings.register_file).office(office)
    return None if member is None else Area.of(member)


async def operators(settings: ServiceSettings, argv: list[str]) -> int:
    """``operators add NAME [--office ID] --operator YOU`` prints the new operator's token once; ``operators disable
    NAME --operator YOU``. Both are in the admin audit log, with who ran them (never the token). ``--office`` is the
    immigration office (a controller in the register) whose area they act in; it is required when the register
    has more than one office."""
    parser = argparse.ArgumentParser(prog="timpora-registry operators")
    parser.add_argument("action", choices=["add", "disable"])
    parser.add_argument("name")
    parser.add_argument("--office", help="the immigration office (its id in the register) whose area they act in")
    audit.operator_argument(parser)
    args = parser.parse_args(argv)
    actor = audit.Actor.command(args.operator)
    if args.action == "add" and (refusal := _office_refusal(narrow(settings, RegistrySettings), args.office)):
        sys.stderr.write(f"{refusal}\n")
        return 2
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action == "add":
                token = await add_operator(session, args.name, args.office)
                await audit.record(
                    session,
                    service=settings.service_name,
                    actor=actor,
                    action="operators.add",
                    target=args.name,
                    new={"name": args.name, "active": True, "office": args.office},
                )
                sys.stdout.write(f"{token}\n")
                sys.stderr.write(f"operator {args.name} added; the token above is shown only this once\n")
                return 0
            if not await disable_operator(session, args.name):
                sys.stderr.write(f"no operator named {args.name}\n")
                return 1
            await audit.record(
                session,
                service=settings.service_name,
                actor=actor,
                action="operators.disable",
                target=args.name,
                old={"name": args.name, "active": True},
                new={"name": args.name, "active": False},
            )
            return 0
    finally:
        await engine.dispose()


async def portal_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``portal-keys issue NAME --operator NAME`` prints a key for the officers' portal once (immigration staff record
    arrivals and the rest through it, each change under the officer's own name, in the office's area alone);
    ``portal-keys revoke KEY_ID --operator NAME``."""
    return await key_command(
        settings, argv, PORTAL_KEYS, prog="timpora-registry portal-keys", holder="the portal's name (portal)"
    )


async def outbox(settings: ServiceSettings, argv: list[str]) -> int:
    """``outbox republish --since T [--until T]``: send the events of a period again."""
    parser = argparse.ArgumentParser(prog="timpora-registry outbox")
    parser.add_argument("action", choices=["republish"])
    parser.add_argument(
        "--since", type=datetime.fromisoformat, required=True, help="ISO time, e.g. 2026-11-01T00:00+07:00"
    )
    parser.add_argument("--until", type=datetime.fromisoformat, default=None)
    args = parser.parse_args(argv)
    registry = narrow(settings, RegistrySettings)
    engine = await migrated_engine(settings, purpose="cli")
    relay = OutboxRelay(
        engine,
        EventProducer(registry.kafka, client_id="timpora-registry-cli"),
        registry.relay,
        SystemClock(),
        catalog=registry.kafka.catalog,
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
    registry = narrow(settings, RegistrySettings)
    engine = await migrated_engine(settings, purpose="relay")
    producer = EventProducer(registry.kafka, client_id="timpora-registry-relay")
    await producer.start()
    try:
        await OutboxRelay(engine, producer, registry.relay, SystemClock(), catalog=registry.kafka.catalog).run()
    finally:
        await producer.stop()
        await engine.dispose()
    return 0


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, one line every 10 s otherwise."""

    QUIET_INTERVAL_S = 10

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last < self.QUIET_INTERVAL_S:
            return
        self._last = now
        rate = summary.lines / max(now - self._started, 1e-9)
        line = (
            f"{summary.lines:,} rows ({rate:,.0f}/s): {summary.imported:,} imported, "
            f"{summary.unchanged:,} already there, {summary.rejected:,} rejected"
        )
        sys.stderr.write(f"\r{line}" if self._tty else f"{line}\n")


async def import_file(settings: ServiceSettings, argv: list[str]) -> int:
    """``import FILE``: CSV or JSON Lines (by extension); rejected rows go to FILE.rejects.csv."""
    parser = argparse.ArgumentParser(prog="timpora-registry import")
    parser.add_argument("file", type=Path)
    parser.add_argument("--rejects", type=Path, help="where to write rejected rows (default: FILE.rejects.csv)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--actor", default="bulk-import", help="recorded as who made the change")
    parser.add_argument("--office", help="the immigration office importing: records of other areas are rejected")
    args = parser.parse_args(argv)
    registry = narrow(settings, RegistrySettings)
    if refusal := _office_refusal(registry, args.office):
        sys.stderr.write(f"{refusal}\n")
        return 2
    rejects_path: Path = args.rejects or args.file.with_name(args.file.name + ".rejects.csv")
    engine = await migrated_engine(settings, purpose="import")
    importer = Importer(
        engine,
        SystemClock(),
        import_id=f"{args.file.name}@{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        topic=registry.kafka.catalog.registry_events.name,
        actor=args.actor,
        source=registry.event_source,
        batch_size=args.batch_size,
        area=_area(registry, args.office),
    )
    try:
        with args.file.open(encoding="utf-8", newline="") as source, rejects_file(rejects_path) as rejected:
            summary = await importer.run(read(args.file, source), rejected, _Progress())
    except ImportBatchError as error:
        sys.stderr.write(f"\nimport stopped: {error}\n")
        return 1
    finally:
        await engine.dispose()
    sys.stderr.write(
        f"\n{summary.imported:,} imported, {summary.unchanged:,} already in the registry, "
        f"{summary.rejected:,} rejected (see {rejects_path})\n"
    )
    return 0


async def generate_file(_: ServiceSettings, argv: list[str]) -> int:
    """``generate --count N --out FILE``: realistic synthetic records (CSV, or JSON Lines for .jsonl)."""
    parser = argparse.ArgumentParser(prog="timpora-registry generate")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        written = write(args.out, generate(args.count, seed=args.seed), handle)
    sys.stderr.write(f"{written:,} records written to {args.out}\n")
    return 0


async def demo_stories(settings: ServiceSettings, argv: list[str]) -> int:
    """``demo-stories [--seed N]``: play the demo's lifecycle stories (departures, a return, passport renewals,
    an extension, overstays settled and enforced) on the people of the imported demo file; once only."""
    parser = argparse.ArgumentParser(prog="timpora-registry demo-stories")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="the seed the demo file was generated with")
    parser.add_argument("--actor", default="demo-stories", help="recorded as who made the changes")
    args = parser.parse_args(argv)
    registry = narrow(settings, RegistrySettings)
    context = ChangeContext(
        actor=args.actor,
        clock=SystemClock(),
        source=registry.event_source,
        topic=registry.kafka.catalog.registry_events.name,
        overstay=registry.overstay,
    )
    engine = await migrated_engine(settings, purpose="cli")
    try:
        outcomes = await play(make_session_factory(engine), context, seed=args.seed)
    finally:
        await engine.dispose()
    for outcome in outcomes:
        sys.stderr.write(f"{outcome.story}: {outcome.result} - {outcome.detail}\n")
    return 0


async def expiry(settings: ServiceSettings, argv: list[str]) -> int:
    """``expiry run-once``: one scheduler pass now (the service also runs it every interval)."""
    parser = argparse.ArgumentParser(prog="timpora-registry expiry")
    parser.add_argument("action", choices=["run-once"])
    parser.parse_args(argv)
    registry = narrow(settings, RegistrySettings)
    engine = await migrated_engine(settings, purpose="expiry")
    try:
        scheduler = ExpiryScheduler(
            make_session_factory(engine),
            registry.expiry,
            SystemClock(),
            registry.event_source,
            topic=registry.kafka.catalog.registry_events.name,
            overstay=registry.overstay,
        )
        emitted = await scheduler.run_once()
    finally:
        await engine.dispose()
    sys.stderr.write(f"{emitted} expiry events emitted\n")
    return 0
