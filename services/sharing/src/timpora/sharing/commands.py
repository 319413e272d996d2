"""``timpora-sharing`` commands beyond serve and migrate: agency keys and the disclosure log."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime
from uuid import UUID

from timpora.common.access import key_command
from timpora.common.clock import SystemClock
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.settings import ServiceSettings, narrow
from timpora.sharing import access, disclosures, rebuild
from timpora.sharing.domain import agreements
from timpora.sharing.settings import SharingSettings


async def keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``keys issue AGENCY`` prints a new key once; ``keys revoke KEY_ID``. Rotate: issue, switch, revoke."""
    agreements_file = narrow(settings, SharingSettings).agreements_file

    def without_agreement(agency: str) -> str | None:
        in_force = agreements.current(agreements_file)
        return None if agency in in_force else f"no agreement for agency {agency} in {agreements_file}"

    return await key_command(
        settings, argv, access.KEYS, prog="timpora-sharing keys", holder="the agency id", refuse=without_agreement
    )


async def disclosure_log(settings: ServiceSettings, argv: list[str]) -> int:
    """``disclosures verify`` checks the hash chain (exit 1 names the first bad row);
    ``disclosures person FOREIGNER_ID`` and ``disclosures agency AGENCY [--since T] [--until T]``
    write those disclosures as CSV on stdout (for a data subject's request, or an audit)."""
    parser = argparse.ArgumentParser(prog="timpora-sharing disclosures")
    parser.add_argument("action", choices=["verify", "person", "agency"])
    parser.add_argument("subject", nargs="?", help="the foreigner id (person) or the agency id (agency)")
    parser.add_argument("--since", type=datetime.fromisoformat)
    parser.add_argument("--until", type=datetime.fromisoformat)
    args = parser.parse_args(argv)
    if args.action != "verify" and not args.subject:
        parser.error(f"{args.action} needs its subject")
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session:
            if args.action == "verify":
                checked, broken = await disclosures.verify(session)
            else:
                rows = await disclosures.export(
                    session,
                    foreigner_id=UUID(args.subject) if args.action == "person" else None,
                    agency_id=args.subject if args.action == "agency" else None,
                    since=args.since,
                    until=args.until,
                )
    finally:
        await engine.dispose()
    if args.action != "verify":
        writer = csv.DictWriter(sys.stdout, fieldnames=disclosures.EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        sys.stderr.write(f"{len(rows)} disclosures\n")
        return 0
    if broken is not None:
        sys.stderr.write(f"the chain breaks at disclosure {broken} (after {checked} good rows)\n")
        return 1
    sys.stderr.write(f"{checked} disclosures, chain intact\n")
    return 0


async def rebuild_projection(settings: ServiceSettings, argv: list[str]) -> int:
    """``rebuild AGENCY``: rebuild that agency's projection from the registry topic, now."""
    parser = argparse.ArgumentParser(prog="timpora-sharing rebuild")
    parser.add_argument("agency")
    args = parser.parse_args(argv)
    settings = narrow(settings, SharingSettings)
    agreement = agreements.current(settings.agreements_file).get(args.agency)
    if agreement is None:
        sys.stderr.write(f"no agreement for agency {args.agency} in {settings.agreements_file}\n")
        return 1
    engine = await migrated_engine(settings, purpose="cli")
    try:
        count = await rebuild.rebuild(
            make_session_factory(engine),
            settings.kafka,
            settings.kafka.catalog.registry_events.name,
            agreement,
            SystemClock().now(),
        )
    finally:
        await engine.dispose()
    sys.stderr.write(f"{args.agency}: {count} people rebuilt under agreement version {agreement.version}\n")
    return 0
