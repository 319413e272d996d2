"""``timpora-sharing`` commands beyond serve and migrate: agency keys, the disclosure log, rebuilds, and the
reports an operator hands to an agency (the monthly recap, the foreigners in an area)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import get_args
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common import audit, disclosures, regions, register, spreadsheets
from timpora.common.access import key_command
from timpora.common.clock import SystemClock
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.disclosures import Basis, Channel, Disclosure
from timpora.common.kafka.admin import latest_records
from timpora.common.kafka.producer import EventProducer
from timpora.common.register.agreements import Agreement
from timpora.common.settings import ServiceSettings, narrow
from timpora.sharing import access, rebuild, reports, verification
from timpora.sharing.settings import SharingSettings


async def keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``keys issue AGENCY`` prints a new key once; ``keys revoke KEY_ID``. Rotate: issue, switch, revoke."""
    register_file = narrow(settings, SharingSettings).register_file

    def without_agreement(agency: str) -> str | None:
        agreements = register.current(register_file).agreements
        return None if agency in agreements else f"no agreement for agency {agency} in {register_file}"

    return await key_command(
        settings, argv, access.KEYS, prog="timpora-sharing keys", holder="the agency id", refuse=without_agreement
    )


async def portal_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``portal-keys issue NAME`` prints a key for the officers' portal once (it reads each agency's view for the
    officer logged in, each read recorded under the officer's name); ``portal-keys revoke KEY_ID``."""
    return await key_command(
        settings, argv, access.PORTAL_KEYS, prog="timpora-sharing portal-keys", holder="the portal's name (portal)"
    )


async def disclosure_log(settings: ServiceSettings, argv: list[str]) -> int:
    """``disclosures verify`` checks the hash chain against its checkpoints and their copies outside the database
    (exit 1 says where it breaks); ``disclosures recheck --operator NAME`` does the same and makes it the check the
    disclosure record's page goes on from, forgetting what earlier checks found (after an investigation; in the admin
    audit log); ``disclosures checkpoint`` anchors the head now; ``disclosures person FOREIGNER_ID`` and
    ``disclosures agency AGENCY [--since T] [--until T]`` write those disclosures, every channel, as CSV on
    stdout (for a data subject's request, or an audit)."""
    parser = argparse.ArgumentParser(prog="timpora-sharing disclosures")
    parser.add_argument("action", choices=["verify", "recheck", "checkpoint", "person", "agency"])
    parser.add_argument("subject", nargs="?", help="the foreigner id (person) or the agency id (agency)")
    parser.add_argument("--since", type=datetime.fromisoformat)
    parser.add_argument("--until", type=datetime.fromisoformat)
    parser.add_argument("--operator", help="recheck: who starts the check afresh (in the admin audit log)")
    args = parser.parse_args(argv)
    if args.action in {"person", "agency"} and not args.subject:
        parser.error(f"{args.action} needs its subject")
    if args.action == "recheck" and not args.operator:
        parser.error("recheck needs --operator NAME: who starts the check afresh")
    engine = await migrated_engine(settings, purpose="cli")
    try:
        if args.action == "checkpoint":
            anchor = await disclosures.checkpoint(engine)
            if anchor is not None:
                await _copy_anchor(settings, anchor)
            sys.stderr.write("checkpoint taken\n" if anchor else "nothing to anchor: the log is empty\n")
            return 0
        if args.action in {"verify", "recheck"}:
            verified = await _checked(engine, settings, recheck_by=args.operator if args.action == "recheck" else None)
        else:
            async with engine.connect() as connection:
                rows = await disclosures.export(
                    connection,
                    foreigner_id=UUID(args.subject) if args.action == "person" else None,
                    agency_id=args.subject if args.action == "agency" else None,
                    since=args.since,
                    until=args.until,
                )
    finally:
        await engine.dispose()
    if args.action not in {"verify", "recheck"}:
        writer = spreadsheets.DictWriter(sys.stdout, fieldnames=disclosures.EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        sys.stderr.write(f"{len(rows)} disclosures\n")
        return 0
    if verified.broken is not None:
        sys.stderr.write("".join(f"{reason}\n" for reason in verified.breaks))
        sys.stderr.write(f"{verified.checked} disclosures read: the log cannot be trusted\n")
        return 1
    sys.stderr.write(f"{verified.checked} disclosures, chain intact and matching every checkpoint\n")
    return 0


async def _checked(engine: AsyncEngine, settings: ServiceSettings, *, recheck_by: str | None) -> disclosures.Verified:
    """The whole chain walked against the checkpoints and their copies on Kafka; kept too, for ``recheck``."""
    anchors = settings.kafka.catalog.disclosure_anchors.name
    records = await latest_records(settings.kafka, anchors, limit=2**62, timeout_s=60)
    copies = [disclosures.Anchor.from_json(record.value) for record in records if record.value]
    if recheck_by is not None:
        return await _recheck(engine, settings, copies, recheck_by)
    async with engine.connect() as connection:
        return await disclosures.verify(connection, copies)


async def _recheck(
    engine: AsyncEngine, settings: ServiceSettings, copies: list[disclosures.Anchor], operator: str
) -> disclosures.Verified:
    """The whole chain walked afresh, kept as the check the record's page goes on from, and in the admin audit log
    in the same transaction, with what the check it replaces had found."""

    async def on_record(connection: AsyncConnection, before: disclosures.Verified, after: disclosures.Verified) -> None:
        await audit.record(
            connection,
            service=settings.service_name,
            actor=audit.Actor.command(operator),
            action="disclosures.recheck",
            target="disclosure log",
            old={"checked": before.checked, "breaks": list(before.breaks)},
            new={"checked": after.checked, "breaks": list(after.breaks)},
        )

    while (check := await verification.walk_whole(engine, afresh=True, copies=copies, on_kept=on_record)) is None:
        sys.stderr.write("a sharing instance is walking the chain: waiting for it to finish\n")
        await asyncio.sleep(5)
    return check.result


async def _copy_anchor(settings: ServiceSettings, anchor: disclosures.Anchor) -> None:
    producer = EventProducer(settings.kafka, client_id="timpora-sharing-cli")
    await producer.start()
    try:
        await producer.send_record(settings.kafka.catalog.disclosure_anchors.name, anchor.record())
    finally:
        await producer.stop()


async def rebuild_projection(settings: ServiceSettings, argv: list[str]) -> int:
    """``rebuild AGENCY --operator NAME``: rebuild that agency's projection from the registry topic, now (in the
    admin audit log)."""
    parser = argparse.ArgumentParser(prog="timpora-sharing rebuild")
    parser.add_argument("agency")
    audit.operator_argument(parser)
    args = parser.parse_args(argv)
    settings = narrow(settings, SharingSettings)
    agreement = register.current(settings.register_file).agreements.get(args.agency)
    if agreement is None:
        sys.stderr.write(f"no agreement for agency {args.agency} in {settings.register_file}\n")
        return 1
    engine = await migrated_engine(settings, purpose="cli")
    try:
        counts = await rebuild.rebuild(
            make_session_factory(engine),
            settings.kafka,
            settings.kafka.catalog.registry_events.name,
            [agreement],
            SystemClock().now(),
        )
        count = counts[args.agency]
        async with engine.begin() as connection:
            await audit.record(
                connection,
                service=settings.service_name,
                actor=audit.Actor.command(args.operator),
                action="projection.rebuild",
                target=args.agency,
                new={"agreement_version": agreement.version, "in_view": count},
            )
    finally:
        await engine.dispose()
    sys.stderr.write(f"{args.agency}: rebuilt under agreement version {agreement.version}, {count} people in view\n")
    return 0


def _report_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("agency")
    parser.add_argument("--month", type=reports.parse_month, help="YYYY-MM by the agency's calendar")
    parser.add_argument("--presence", choices=get_args(reports.Presence), default="present")
    parser.add_argument("--format", choices=["json", "csv"], default="json")
    return parser


def _in_force(settings: SharingSettings, agency: str, now: datetime) -> Agreement | None:
    member = register.current(settings.register_file).members.get(agency)
    agreement = None if member is None else member.agreement_at(now)
    if agreement is None:
        sys.stderr.write(f"no agreement in force for agency {agency} in {settings.register_file}\n")
    return agreement


def _period(agreement: Agreement, args: argparse.Namespace, now: datetime) -> reports.Period | None:
    try:
        return reports.period(agreement, args.month, now)
    except reports.FutureMonthError as error:
        sys.stderr.write(f"{error}\n")
        return None


def _disclosure(
    agreement: Agreement, command: str, args: argparse.Namespace, ids: list[UUID], now: datetime
) -> Disclosure:
    """The report as handed to the agency: logged like an API read, by the command, under no key."""
    query = {name: str(value) for name, value in vars(args).items() if name != "agency" and value is not None}
    if args.month is not None:
        query["month"] = f"{args.month:%Y-%m}"
    return Disclosure(
        agency_id=agreement.agency_id,
        channel=Channel.COMMAND,
        reference=f"timpora-sharing {command}",
        query=query,
        record_ids=ids,
        fields=list(agreement.fields),
        basis=Basis.AGREEMENT,
        purpose=agreement.purpose,
        agreement_version=agreement.version,
        disclosed_at=now,
    )


async def recap(settings: ServiceSettings, argv: list[str]) -> int:
    """``recap AGENCY [--month YYYY-MM] [--presence P] [--format json|csv]``: the agency's monthly recap (the
    month under way if no month is given) on stdout, written to the disclosure log first."""
    args = _report_parser("timpora-sharing recap").parse_args(argv)
    settings = narrow(settings, SharingSettings)
    now = SystemClock().now()
    agreement = _in_force(settings, args.agency, now)
    period = None if agreement is None else _period(agreement, args, now)
    if agreement is None or period is None:
        return 1
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session:
            found, counted = await reports.monthly_recap(
                session, agreement, period, args.presence, rule=settings.overstay
            )
        await disclosures.write(engine, [_disclosure(agreement, "recap", args, counted, now)])
    finally:
        await engine.dispose()
    if args.format == "csv":
        sys.stdout.write(reports.as_csv(reports.RECAP_COLUMNS, reports.recap_rows(found)))
    else:
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
    return 0


def _region(code: str) -> str:
    return regions.require(code).code


async def area(settings: ServiceSettings, argv: list[str]) -> int:
    """``area AGENCY [--region CODE] [--month YYYY-MM] [--presence P] [--format json|csv]``: the foreigners in
    the agency's area (now, or at a past month's end) on stdout, written to the disclosure log first."""
    parser = _report_parser("timpora-sharing area")
    parser.add_argument("--region", type=_region, help="a Kemendagri code within the agency's jurisdiction")
    args = parser.parse_args(argv)
    settings = narrow(settings, SharingSettings)
    now = SystemClock().now()
    agreement = _in_force(settings, args.agency, now)
    if agreement is None:
        return 1
    if args.region is not None and (reason := reports.region_refused(agreement, args.region)):
        sys.stderr.write(f"--region: {reason}\n")
        return 1
    period = None if args.month is None else _period(agreement, args, now)
    if args.month is not None and period is None:
        return 1
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session:
            listed = await reports.area_list(
                session,
                agreement,
                as_of=now if period is None else period.as_of,
                month=None if period is None else period.label,
                region=args.region,
                presence=args.presence,
                rule=settings.overstay,
            )
        ids = [UUID(item["foreigner_id"]) for item in listed.items]
        await disclosures.write(engine, [_disclosure(agreement, "area", args, ids, now)])
    finally:
        await engine.dispose()
    if args.format == "csv":
        sys.stdout.write(reports.as_csv(reports.area_columns(agreement), listed.items))
    else:
        sys.stdout.write(listed.model_dump_json(indent=2) + "\n")
    return 0
