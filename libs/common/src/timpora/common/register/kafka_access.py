"""``timpora-agencies kafka``: an agency's own access to its topics on the broker, as the register allows it.

    timpora-agencies kafka grant AGENCY_ID    # new credentials (a rotation if it had some) and its ACLs
    timpora-agencies kafka revoke AGENCY_ID   # its ACLs and credentials removed: it can connect no more
    timpora-agencies kafka sync               # every granted agency's ACLs brought to what the register says now
    timpora-agencies kafka watch              # sync whenever the register or the day changes (runs beside the
                                              # services, so an agreement that ends, or a member removed,
                                              # loses its access at once)

``grant`` prints exactly the lines the agency puts in its client's environment, and nothing else on stdout
(the password is shown this once; only its salted hash is kept, by the broker). It reads the operators'
connection from ``TIMPORA_KAFKA_*`` and the register from ``TIMPORA_REGISTER_FILE``.

What an agency may read follows the register: its events topic while its agreement is in force (the
controller's always), its alerts topic too when its ``channels.kafka`` is on. Nothing else, ever.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from timpora.common.config_files import ConfigFileError
from timpora.common.kafka.acls import agency_bindings, agency_group_prefix, agency_of, agency_username
from timpora.common.kafka.admin import admin_session, ensure_topics
from timpora.common.kafka.security import (
    AclBinding,
    AclFilter,
    KafkaSecurityError,
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    set_scram_password,
    user,
)
from timpora.common.register import DEFAULT_REGISTER, Register, book, load
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings, settings_refused
from timpora.common.topics import TopicSpec

_REGISTER_VARIABLE = "TIMPORA_REGISTER_FILE"


class AccessRefusedError(Exception):
    """The register does not allow what was asked (the message says why, in an operator's words)."""


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What an agency may read on the broker at one moment."""

    agency_id: str
    events: bool
    alerts: bool

    @property
    def anything(self) -> bool:
        return self.events or self.alerts


def entitlement(register: Register, agency_id: str, moment: datetime) -> Entitlement:
    member = register.members.get(agency_id)
    if member is None:
        return Entitlement(agency_id, events=False, alerts=False)
    # Personal data leaves only under an agreement in force (the controller's own data is processing).
    in_force = member.controller or member.agreement_at(moment) is not None
    return Entitlement(agency_id, events=in_force, alerts=in_force and member.channels.kafka)


@dataclass(frozen=True, slots=True)
class Credentials:
    bootstrap_servers: str
    username: str
    password: str
    ca_file: str
    #: What it may read: these topics, in consumer groups whose names start with ``group_prefix``.
    topics: tuple[str, ...] = ()
    group_prefix: str = ""

    def lines(self) -> list[str]:
        """The client environment, exactly as the README and the agencies use it."""
        return [
            f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers}",
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL",
            "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
            f"KAFKA_USERNAME={self.username}",
            f"KAFKA_PASSWORD={self.password}",
            f"KAFKA_CA_FILE={self.ca_file}",
        ]


class AgencyAccess:
    """Grants, revokes and aligns agencies' broker access, as the operator (a Kafka super user)."""

    def __init__(self, admin: KafkaSettings) -> None:
        self._admin = admin
        self._catalog = admin.catalog

    def wanted(self, granted: Entitlement) -> list[AclBinding]:
        return agency_bindings(self._catalog, granted.agency_id, events=granted.events, alerts=granted.alerts)

    def topics(self, granted: Entitlement) -> list[TopicSpec]:
        catalog, agency_id = self._catalog, granted.agency_id
        return [
            *([catalog.agency_events(agency_id)] if granted.events else []),
            *([catalog.agency_alerts(agency_id)] if granted.alerts else []),
        ]

    async def grant(
        self, register: Register, agency_id: str, moment: datetime, *, agency_servers: str, ca_file: str
    ) -> Credentials:
        if agency_id not in register.members:
            raise AccessRefusedError(f"{agency_id} is not a member in the register")
        granted = entitlement(register, agency_id, moment)
        if not granted.anything:
            raise AccessRefusedError(f"{agency_id} has no data-sharing agreement in force: it may read nothing")
        catalog = self._catalog
        topics = self.topics(granted)
        # Its topics exist before it first subscribes, even if the services have not yet seen the register.
        await ensure_topics(self._admin, topics)
        username = agency_username(catalog, agency_id)
        password = secrets.token_urlsafe(32)
        async with admin_session(self._admin) as client:
            # A new password replaces the old one at once (a rotation); the rules are made exactly the register's.
            await set_scram_password(client, username, password)
            await delete_acls(client, [AclFilter(principal=user(username))])
            await create_acls(client, self.wanted(granted))
        return Credentials(
            agency_servers,
            username,
            password,
            ca_file,
            tuple(topic.name for topic in topics),
            agency_group_prefix(catalog, agency_id),
        )

    async def revoke(self, agency_id: str) -> bool:
        """Removes its rules first (an open connection is refused from its next request on), then its login."""
        username = agency_username(self._catalog, agency_id)
        async with admin_session(self._admin) as client:
            removed = await delete_acls(client, [AclFilter(principal=user(username))])
            had_login = await delete_scram_user(client, username)
        return bool(removed) or had_login

    async def granted(self) -> dict[str, list[AclBinding]]:
        """The rules of every agency principal of this namespace, by agency id."""
        async with admin_session(self._admin) as client:
            rules = await describe_acls(client, AclFilter())
        found: dict[str, list[AclBinding]] = {}
        for rule in rules:
            agency_id = agency_of(self._catalog, rule.principal)
            if agency_id is not None:
                found.setdefault(agency_id, []).append(rule)
        return found

    async def sync(self, register: Register, moment: datetime) -> list[str]:
        """Brings every granted agency's rules to what the register allows at ``moment``: an agency removed,
        or whose agreement is not in force, loses its rules and its login; one whose terms changed gets
        exactly its new rules. Returns one line per agency changed."""
        changes: list[str] = []
        for agency_id, rules in sorted((await self.granted()).items()):
            granted = entitlement(register, agency_id, moment)
            if not granted.anything:
                await self.revoke(agency_id)
                why = "not in the register" if agency_id not in register.members else "no agreement in force"
                changes.append(f"{agency_id}: access revoked ({why})")
                continue
            wanted = set(self.wanted(granted))
            have = set(rules)
            if wanted == have:
                continue
            async with admin_session(self._admin) as client:
                await delete_acls(client, [AclFilter.exactly(rule) for rule in sorted(have - wanted)])
                await ensure_topics(self._admin, self.topics(granted))
                await create_acls(client, sorted(wanted - have))
            changes.append(f"{agency_id}: access now {_reads(granted)}")
        return changes


def _reads(granted: Entitlement) -> str:
    topics = [name for name, on in (("events", granted.events), ("alerts", granted.alerts)) if on]
    return "reads its " + " and ".join(topics) + " topic" + ("s" if len(topics) > 1 else "")


async def watch(access: AgencyAccess, register_file: Path, *, every_s: float = 2.0) -> None:
    """Syncs every ``every_s`` seconds, with the register as it is on disk (a broken file keeps the last good
    one, as the services do); forever."""
    registers = book(register_file)
    while True:
        try:
            for line in await access.sync(registers.current(), datetime.now(UTC)):
                sys.stdout.write(f"{line}\n")
                sys.stdout.flush()
        except (OSError, KafkaError, KafkaSecurityError) as error:
            # A broker restarting: the next round tries again.
            sys.stderr.write(f"agency access not synced ({type(error).__name__}); trying again\n")
            sys.stderr.flush()
        await asyncio.sleep(every_s)


def _register_file() -> Path:
    return Path(os.environ.get(_REGISTER_VARIABLE) or DEFAULT_REGISTER)


async def _run(args: argparse.Namespace, operator: OperatorKafkaSettings) -> int:
    access = AgencyAccess(operator.admin())
    if args.action == "grant":
        if not operator.agency_bootstrap_servers or not operator.ca_file:
            raise AccessRefusedError(
                "TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS and TIMPORA_KAFKA_CA_FILE must say where agencies connect"
            )
        credentials = await access.grant(
            load(_register_file()),
            args.agency,
            datetime.now(UTC),
            agency_servers=operator.agency_bootstrap_servers,
            ca_file=operator.ca_file,
        )
        sys.stdout.write("".join(f"{line}\n" for line in credentials.lines()))
        sys.stderr.write(
            f"{args.agency} may read {' and '.join(credentials.topics)}, in consumer groups named "
            f"{credentials.group_prefix}…; the password is shown this once\n"
        )
        return 0
    if args.action == "revoke":
        removed = await access.revoke(args.agency)
        sys.stderr.write(f"{args.agency}: {'access revoked' if removed else 'had no access'}\n")
        return 0
    if args.action == "sync":
        changes = await access.sync(load(_register_file()), datetime.now(UTC))
        sys.stdout.write("".join(f"{line}\n" for line in changes) or "every agency's access is as the register says\n")
        return 0
    await watch(access, _register_file())
    return 0  # pragma: no cover - watch runs until stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpora-agencies", description="An agency's access to its Kafka topics.")
    area = parser.add_subparsers(dest="area", required=True)
    kafka = area.add_parser("kafka", help="credentials and ACLs on the broker")
    actions = kafka.add_subparsers(dest="action", required=True)
    for action in ("grant", "revoke"):
        actions.add_parser(action).add_argument("agency", help="the agency id, as in the register")
    actions.add_parser("sync")
    actions.add_parser("watch")
    args = parser.parse_args(argv)
    try:
        operator = OperatorKafkaSettings()
    except ValidationError as error:
        sys.stderr.write("".join(f"timpora-agencies: {line}\n" for line in settings_refused(error)))
        return 2
    try:
        return asyncio.run(_run(args, operator))
    except (AccessRefusedError, ConfigFileError, KafkaSecurityError, ValueError) as error:
        sys.stderr.write(f"timpora-agencies: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
