"""``timpora-alerts`` commands beyond serve and migrate: keys for agencies and operators, and checking
a directory or rule file before it is deployed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from uuid import UUID

from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS
from timpora.alerts.domain import directory, rules
from timpora.alerts.settings import AlertsSettings
from timpora.common.access import KeyStore
from timpora.common.config_files import ConfigFileError
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.settings import ServiceSettings, narrow


async def agency_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``keys issue AGENCY`` prints a new agency key once; ``keys revoke KEY_ID``."""
    return await _keys(settings, argv, AGENCY_KEYS, prog="timpora-alerts keys", holder="the agency id")


async def operator_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``operators add NAME`` prints a new operator key once; ``operators revoke KEY_ID``."""
    return await _keys(settings, argv, OPERATOR_KEYS, prog="timpora-alerts operators", holder="the operator's name")


async def _keys(settings: ServiceSettings, argv: list[str], store: KeyStore, *, prog: str, holder: str) -> int:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("action", choices=["issue", "add", "revoke"])
    parser.add_argument("subject", help=f"{holder} (issue/add) or the key id (revoke)")
    args = parser.parse_args(argv)
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action != "revoke":
                key_id, key = await store.issue(session, args.subject)
                sys.stdout.write(f"{key}\n")
                sys.stderr.write(f"key {key_id} issued to {args.subject}; the key above is shown only this once\n")
                return 0
            if not await store.revoke(session, UUID(args.subject)):
                sys.stderr.write(f"no active key {args.subject}\n")
                return 1
            return 0
    finally:
        await engine.dispose()


async def check(settings: ServiceSettings, argv: list[str]) -> int:
    """``check [--agencies FILE] [--rules FILE]``: validates the files as the service would, without a database."""
    settings = narrow(settings, AlertsSettings)
    parser = argparse.ArgumentParser(prog="timpora-alerts check")
    parser.add_argument("--agencies", type=Path, default=settings.agencies_file)
    parser.add_argument("--rules", type=Path, default=settings.rules_file)
    args = parser.parse_args(argv)
    try:
        declared = directory.load(args.agencies)
        loaded = rules.load(args.rules, {agency.id for agency in declared})
    except ConfigFileError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    sys.stdout.write(f"{len(declared)} agencies, {len(loaded)} rules: OK\n")
    return 0
