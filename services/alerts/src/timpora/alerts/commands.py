"""``timpora-alerts`` commands beyond serve and migrate: keys for agencies and operators, and checking
a directory or rule file before it is deployed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS, PORTAL_KEYS
from timpora.alerts.domain import rules
from timpora.alerts.settings import AlertsSettings
from timpora.common import register
from timpora.common.access import key_command
from timpora.common.config_files import ConfigFileError
from timpora.common.settings import ServiceSettings, narrow


async def agency_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``keys issue AGENCY --operator NAME`` prints a new agency key once; ``keys revoke KEY_ID --operator NAME``.
    Only a member of the register gets a key (and its key stops working when it leaves the register)."""
    register_file = narrow(settings, AlertsSettings).register_file

    def not_a_member(agency: str) -> str | None:
        members = register.current(register_file).members
        return None if agency in members else f"no member {agency} in the register {register_file}: no key issued"

    return await key_command(
        settings, argv, AGENCY_KEYS, prog="timpora-alerts keys", holder="the agency id", refuse=not_a_member
    )


async def operator_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``operators issue NAME --operator NAME`` prints a new operator key once; ``operators revoke KEY_ID
    --operator NAME``."""
    return await key_command(settings, argv, OPERATOR_KEYS, prog="timpora-alerts operators", holder="the operator")


async def portal_keys(settings: ServiceSettings, argv: list[str]) -> int:
    """``portal-keys issue NAME --operator NAME`` prints a key for the officers' portal once (it reads and acts on
    an agency's alerts for the officer logged in, each under the officer's name); ``portal-keys revoke KEY_ID``."""
    return await key_command(
        settings, argv, PORTAL_KEYS, prog="timpora-alerts portal-keys", holder="the portal's name (portal)"
    )


async def check(settings: ServiceSettings, argv: list[str]) -> int:
    """``check [--register FILE] [--rules FILE]``: validates the files as the service would, without a database."""
    settings = narrow(settings, AlertsSettings)
    parser = argparse.ArgumentParser(prog="timpora-alerts check")
    parser.add_argument("--register", type=Path, default=settings.register_file)
    parser.add_argument("--rules", type=Path, default=settings.rules_file)
    args = parser.parse_args(argv)
    try:
        members = register.load(args.register).members
        loaded = rules.load(args.rules, members)
    except ConfigFileError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    sys.stdout.write(f"{len(members)} members, {len(loaded)} rules: OK\n")
    return 0
