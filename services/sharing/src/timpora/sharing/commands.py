"""``timpora-sharing`` commands beyond serve and migrate: agency keys and the disclosure log."""

from __future__ import annotations

import argparse
import sys
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.settings import ServiceSettings
from timpora.sharing import access, disclosures
from timpora.sharing.domain import agreements
from timpora.sharing.settings import SharingSettings


async def _migrated_engine(settings: ServiceSettings) -> AsyncEngine:
    engine = make_engine(settings.database, application_name="timpora-sharing-cli", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    return engine


async def keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``keys issue AGENCY`` prints a new key once; ``keys revoke KEY_ID``. Rotate: issue, switch, revoke."""
    parser = argparse.ArgumentParser(prog="timpora-sharing keys")
    parser.add_argument("action", choices=["issue", "revoke"])
    parser.add_argument("subject", help="the agency id (issue) or the key id (revoke)")
    args = parser.parse_args(argv)
    if not isinstance(settings, SharingSettings):
        raise TypeError("sharing commands need SharingSettings")
    engine = await _migrated_engine(settings)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action == "issue":
                if args.subject not in agreements.current(settings.agreements_file):
                    sys.stderr.write(f"no agreement for agency {args.subject} in {settings.agreements_file}\n")
                    return 1
                key_id, key = await access.issue(session, args.subject)
                sys.stdout.write(f"{key}\n")
                sys.stderr.write(f"key {key_id} issued to {args.subject}; the key above is shown only this once\n")
                return 0
            if not await access.revoke(session, UUID(args.subject)):
                sys.stderr.write(f"no active key {args.subject}\n")
                return 1
            return 0
    finally:
        await engine.dispose()


async def disclosure_log(settings: ServiceSettings, argv: list[str]) -> int:
    """``disclosures verify``: checks the whole hash chain; exit 1 names the first row that fails."""
    parser = argparse.ArgumentParser(prog="timpora-sharing disclosures")
    parser.add_argument("action", choices=["verify"])
    parser.parse_args(argv)
    engine = await _migrated_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            checked, broken = await disclosures.verify(session)
    finally:
        await engine.dispose()
    if broken is not None:
        sys.stderr.write(f"the chain breaks at disclosure {broken} (after {checked} good rows)\n")
        return 1
    sys.stderr.write(f"{checked} disclosures, chain intact\n")
    return 0
