"""``timpora-agencies kafka``: an agency's own access to its topics on the broker, as the register allows it.

    timpora-agencies kafka grant AGENCY_ID --operator NAME   # new credentials (a rotation if it had some), ACLs
    timpora-agencies kafka revoke AGENCY_ID --operator NAME  # ACLs and credentials removed: it can connect no more
    timpora-agencies kafka sync     # every granted agency's ACLs brought to what the register says now
    timpora-agencies kafka watch    # sync whenever the register or the day changes (runs beside the services,
                                    # so an agreement that ends, or a member removed, loses its access at once)

``grant`` prints exactly the lines the agency puts in its client's environment, and nothing else on stdout
(the password is shown this once; only its salted hash is kept, by the broker). It reads the operators'
connection from ``TIMPORA_KAFKA_*`` and the register from ``TIMPORA_REGISTER_FILE``.

Every grant (a rotation too) and revocation is in the admin audit log (:mod:`timpora.common.audit`), service
``agencies``: ``grant`` and ``revoke`` name the operator (``--operator NAME``, required) and the OS user; ``sync``
and ``watch`` record each revocation or change of rules they make as the access keeper. The log's database is
``TIMPORA_AUDIT_DATABASE_URL``, else ``TIMPORA_ALERTS_DATABASE__URL`` (the alerts role may append to it). A grant
that cannot be recorded is not made; a revocation is made anyway (access taken is never held back) and the tool
says it could not record it.

What an agency may read follows the register: its events topic while its agreement is in force (the
controller's always), its alerts topic too when its ``channels.kafka`` is on. Nothing else, ever.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaError
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common import audit
from timpora.common.config_files import ConfigFileError
from timpora.common.kafka.acls import agency_bindings, agency_group_prefix, agency_of, agency_username
from timpora.common.kafka.admin import admin_session, ensure_topics
from timpora.common.kafka.security import (
    AclBinding,
    AclFilter,
    KafkaSecurityError,
    ResourceType,
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    scram_users,
    set_scram_password,
    user,
)
from timpora.common.register import DEFAULT_REGISTER, Register, book, load
from timpora.common.settings import DatabaseSettings, KafkaSettings, OperatorKafkaSettings, settings_refused
from timpora.common.topics import TopicSpec

_REGISTER_VARIABLE = "TIMPORA_REGISTER_FILE"
#: Where the admin audit log is (a database URL); the alerts service's own is the fallback.
AUDIT_DATABASE_VARIABLES = ("TIMPORA_AUDIT_DATABASE_URL", "TIMPORA_ALERTS_DATABASE__URL")
#: The ``service`` of this tool's audit entries.
AUDIT_SERVICE = "agencies"
KEEPER = "the access keeper"
WATCH_EVERY_S = 2.0


class AccessRefusedError(Exception):
    """The register does not allow what was asked (the message says why, in an operator's words)."""


class AuditUnavailableError(Exception):
    """The admin audit log cannot be written (no database set, or it does not answer); says which and why."""


class AuditTrail:
    """This tool's entries in the admin audit log, in the database its URL names."""

    def __init__(self, url: SecretStr, source: str) -> None:
        from timpora.common.db.engine import make_engine  # noqa: PLC0415 - the database only for this tool

        self.source = source
        self._engine: AsyncEngine = make_engine(
            DatabaseSettings(url=url, pool_size=1, max_overflow=0), application_name="timpora-agencies", schema="audit"
        )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> AuditTrail | None:
        """The trail ``TIMPORA_AUDIT_DATABASE_URL`` (else ``TIMPORA_ALERTS_DATABASE__URL``) names; None if neither
        is set. A placeholder password is refused (``ValidationError``) as everywhere."""
        environ = dict(os.environ) if environ is None else environ
        for variable in AUDIT_DATABASE_VARIABLES:
            if environ.get(variable):
                return cls(SecretStr(environ[variable]), variable)
        return None

    async def connect(self) -> AsyncConnection:
        """An open connection in a transaction; :class:`AuditUnavailableError` if the database does not answer."""
        try:
            connection = await self._engine.connect()
        except (OSError, SQLAlchemyError, TimeoutError) as error:
            raise AuditUnavailableError(self._unreachable(error)) from None
        try:
            await connection.begin()
            await connection.execute(text("SELECT 1"))
        except (OSError, SQLAlchemyError, TimeoutError) as error:
            await connection.close()
            raise AuditUnavailableError(self._unreachable(error)) from None
        return connection

    async def record(
        self,
        actor: audit.Actor,
        action: str,
        target: str,
        *,
        old: object = None,
        new: object = None,
        connection: AsyncConnection | None = None,
    ) -> None:
        """Appends one entry: in ``connection``'s transaction (committed by its caller), or in one of its own."""
        if connection is not None:
            await audit.record(
                connection, service=AUDIT_SERVICE, actor=actor, action=action, target=target, old=old, new=new
            )
            return
        own = await self.connect()
        try:
            await audit.record(own, service=AUDIT_SERVICE, actor=actor, action=action, target=target, old=old, new=new)
            await own.commit()
        except (OSError, SQLAlchemyError, TimeoutError) as error:
            raise AuditUnavailableError(self._unreachable(error)) from None
        finally:
            await own.close()

    def _unreachable(self, error: BaseException) -> str:
        return f"cannot write the admin audit log ({type(error).__name__}): check {self.source}"

    async def close(self) -> None:
        await self._engine.dispose()


def _no_trail() -> str:
    return (
        f"the admin audit log's database is not set: set {AUDIT_DATABASE_VARIABLES[0]} "
        f"(or {AUDIT_DATABASE_VARIABLES[1]}, which deploy/local/stack env prints)"
    )


@dataclass(frozen=True, slots=True)
class Change:
    """What ``sync`` did to one agency's access, as its line says and its audit entry records."""

    agency_id: str
    line: str
    action: str
    old: Mapping[str, object]
    new: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What an agency may read on the broker at one moment."""

    agency_id: str
    events: bool
    alerts: bool
    #: The partitions of its topics, as the register sizes them.
    partitions: int = 1

    @property
    def anything(self) -> bool:
        return self.events or self.alerts


def entitlement(register: Register, agency_id: str, moment: datetime) -> Entitlement:
    member = register.members.get(agency_id)
    if member is None:
        return Entitlement(agency_id, events=False, alerts=False)
    # Personal data leaves only under an agreement in force (the controller's own data is processing).
    in_force = member.controller or member.agreement_at(moment) is not None
    return Entitlement(
        agency_id, events=in_force, alerts=in_force and member.channels.kafka, partitions=member.topic_partitions
    )


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
        """The client environment, exactly as docs/agencies.md and the agencies use it."""
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

    def wanted(self, granted: Entitlement) -> list[AclBinding]:
        return agency_bindings(self._catalog, granted.agency_id, events=granted.events, alerts=granted.alerts)

    def topics(self, granted: Entitlement) -> list[TopicSpec]:
        catalog, agency_id = self._catalog, granted.agency_id
        return [
            *([catalog.agency_events(agency_id, granted.partitions)] if granted.events else []),
            *([catalog.agency_alerts(agency_id, granted.partitions)] if granted.alerts else []),
        ]

    def __init__(self, admin: KafkaSettings, trail: AuditTrail | None = None) -> None:
        self._admin = admin
        self._catalog = admin.catalog
        #: Where ``sync`` records what it changes (as the access keeper); nowhere if None.
        self._trail = trail

    def refusal(self, register: Register, agency_id: str, moment: datetime, *, where: str = "the register") -> None:
        """Raises :class:`AccessRefusedError` if the register gives ``agency_id`` nothing to read at ``moment``."""
        if agency_id not in register.members:
            raise AccessRefusedError(f"{agency_id} is not a member in {where}")
        if not entitlement(register, agency_id, moment).anything:
            raise AccessRefusedError(
                f"{agency_id} has no data-sharing agreement in force in {where}: it may read nothing"
            )

    async def grant(
        self,
        register: Register,
        agency_id: str,
        moment: datetime,
        *,
        agency_servers: str,
        ca_file: str,
        where: str = "the register",
    ) -> Credentials:
        self.refusal(register, agency_id, moment, where=where)
        granted = entitlement(register, agency_id, moment)
        catalog = self._catalog
        topics = self.topics(granted)
        # Its topics exist before it first subscribes, even if the services have not yet seen the register.
        await ensure_topics(self._admin, topics)
        username = agency_username(catalog, agency_id)
        password = secrets.token_urlsafe(32)
        async with admin_session(self._admin) as client:
            # The rules are made exactly the register's first, then the new password replaces the old one at once
            # (a rotation). In that order a login never exists without its rules, which is how the keeper knows
            # a revocation left unfinished (rules gone, login kept) and finishes it.
            wanted = set(self.wanted(granted))
            have = set(await describe_acls(client, AclFilter(principal=user(username))))
            # New rules before the old go: a rotation never leaves the login without any.
            await create_acls(client, sorted(wanted - have))
            await delete_acls(client, [AclFilter.exactly(rule) for rule in sorted(have - wanted)])
            await set_scram_password(client, username, password)
        return Credentials(
            agency_servers,
            username,
            password,
            ca_file,
            tuple(topic.name for topic in topics),
            agency_group_prefix(catalog, agency_id),
        )

    async def rules(self, agency_id: str) -> list[AclBinding]:
        """The agency principal's rules now."""
        async with admin_session(self._admin) as client:
            return await describe_acls(client, AclFilter(principal=user(agency_username(self._catalog, agency_id))))

    async def revoke(self, agency_id: str) -> bool:
        """Removes its rules first (an open connection is refused from its next request on), then its login."""
        username = agency_username(self._catalog, agency_id)
        async with admin_session(self._admin) as client:
            removed = await delete_acls(client, [AclFilter(principal=user(username))])
            had_login = await delete_scram_user(client, username)
        return bool(removed) or had_login

    async def granted(self) -> dict[str, list[AclBinding]]:
        """The rules of every agency principal of this namespace that has rules or a login, by agency id (a login
        without rules has an empty list)."""
        async with admin_session(self._admin) as client:
            # Logins first, then rules: ``grant`` makes the rules before the login, so a login seen here had its
            # rules when they are listed next (the other order could catch a grant between its two steps and
            # take it for an unfinished revocation).
            logins = await scram_users(client)
            rules = await describe_acls(client, AclFilter())
        found: dict[str, list[AclBinding]] = {}
        for login in logins:
            agency_id = agency_of(self._catalog, user(login))
            if agency_id is not None:
                found[agency_id] = []
        for rule in rules:
            agency_id = agency_of(self._catalog, rule.principal)
            if agency_id is not None:
                found.setdefault(agency_id, []).append(rule)
        return found

    async def sync(self, register: Register, moment: datetime) -> list[str]:
        """Brings every granted agency's rules to what the register allows at ``moment``: an agency removed,
        or whose agreement is not in force, loses its rules and its login; one whose terms changed gets
        exactly its new rules. Returns one line per agency changed; each change is recorded in the admin audit
        log as the access keeper's (a change that could not be recorded is made all the same, and said on
        stderr: access is never held back for the log)."""
        changes: list[str] = []
        for agency_id, rules in sorted((await self.granted()).items()):
            granted = entitlement(register, agency_id, moment)
            principal = agency_username(self._catalog, agency_id)
            old: Mapping[str, object] = {"principal": principal, "topics": _topics_of(rules)}
            if not rules:
                # A login without rules: a revocation that stopped between its two steps (grant never leaves
                # one). It can read nothing, but it is no login anyone should hold: finished here.
                await self.revoke(agency_id)
                why = "a login left without rules"
                new_value = {"principal": principal, "topics": [], "reason": why}
                change = Change(agency_id, f"{agency_id}: access revoked ({why})", "kafka.revoke", old, new_value)
            elif not granted.anything:
                await self.revoke(agency_id)
                why = "not in the register" if agency_id not in register.members else "no agreement in force"
                new_value = {"principal": principal, "topics": [], "reason": why}
                change = Change(agency_id, f"{agency_id}: access revoked ({why})", "kafka.revoke", old, new_value)
            else:
                wanted = set(self.wanted(granted))
                have = set(rules)
                if wanted == have:
                    continue
                async with admin_session(self._admin) as client:
                    await delete_acls(client, [AclFilter.exactly(rule) for rule in sorted(have - wanted)])
                    await ensure_topics(self._admin, self.topics(granted))
                    await create_acls(client, sorted(wanted - have))
                new = {"principal": principal, "topics": _topics_of(wanted)}
                change = Change(agency_id, f"{agency_id}: access now {_reads(granted)}", "kafka.change", old, new)
            changes.append(change.line)
            await self._record(change)
        return changes

    async def _record(self, change: Change) -> None:
        if self._trail is None:
            return
        try:
            await self._trail.record(
                audit.Actor.system(KEEPER), change.action, change.agency_id, old=change.old, new=change.new
            )
        except AuditUnavailableError as error:
            _say(f"{change.agency_id}: {change.action} made but not recorded: {error}")


def _topics_of(rules: Iterable[AclBinding]) -> list[str]:
    return sorted({rule.resource_name for rule in rules if rule.resource_type == ResourceType.TOPIC})


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def _reads(granted: Entitlement) -> str:
    topics = [name for name, on in (("events", granted.events), ("alerts", granted.alerts)) if on]
    return "reads its " + " and ".join(topics) + " topic" + ("s" if len(topics) > 1 else "")


class KafkaUnreachableError(Exception):
    """The operator's connection to Kafka failed (down, wrong address, wrong login); says where and what to do."""

    def __init__(self, operator: OperatorKafkaSettings, error: BaseException) -> None:
        super().__init__(
            f"cannot reach Kafka at {operator.bootstrap_servers} as {operator.username or 'no login'} "
            f'({type(error).__name__}): run eval "$(deploy/local/stack env)" first, or check TIMPORA_KAFKA_*'
        )


#: What a failed connection to the broker raises, from the admin client or a topic's creation.
_KAFKA_FAILURES = (KafkaError, OSError, TimeoutError)


async def watch(
    access: AgencyAccess, register_file: Path, operator: OperatorKafkaSettings, *, every_s: float = WATCH_EVERY_S
) -> None:
    """Syncs every ``every_s`` seconds, with the register as it is on disk (a broken file keeps the last good
    one, as the services do); forever. A register it cannot load at start stops it (``ConfigFileError``); a
    broker that does not answer is said once when it stops answering and once when it answers again."""
    registers = book(register_file)
    _say(f"watching {register_file}; agencies' access follows it every {every_s:g} s")
    trouble: str | None = None
    while True:
        try:
            for line in await access.sync(registers.current(), datetime.now(UTC)):
                sys.stdout.write(f"{line}\n")
                sys.stdout.flush()
            if trouble is not None:
                _say(f"Kafka at {operator.bootstrap_servers} answers again: agencies' access follows the register")
            trouble = None
        except (*_KAFKA_FAILURES, KafkaSecurityError) as error:
            # A broker restarting: the next round tries again. Said when it starts, not every round.
            now = (
                str(KafkaUnreachableError(operator, error))
                if not isinstance(error, KafkaSecurityError)
                else f"Kafka at {operator.bootstrap_servers} refused a change: {error}"
            )
            if now != trouble:
                _say(f"agency access not synced: {now}; trying again every {every_s:g} s")
            trouble = now
        await asyncio.sleep(every_s)


def _register_file() -> Path:
    return Path(os.environ.get(_REGISTER_VARIABLE) or DEFAULT_REGISTER)


async def _run(args: argparse.Namespace, operator: OperatorKafkaSettings) -> int:
    trail = AuditTrail.from_environment()
    try:
        return await _act(args, operator, trail)
    finally:
        if trail is not None:
            await trail.close()


async def _act(args: argparse.Namespace, operator: OperatorKafkaSettings, trail: AuditTrail | None) -> int:
    access = AgencyAccess(operator.admin(), trail if args.action in {"sync", "watch"} else None)
    if args.action == "grant":
        return await _grant(args, operator, access, trail)
    if args.action == "revoke":
        return await _revoke(args, operator, access, trail)
    if trail is None:
        _say(f"timpora-agencies: {_no_trail()}; what this changes is not recorded")
    if args.action == "sync":
        try:
            changes = await access.sync(load(_register_file()), datetime.now(UTC))
        except _KAFKA_FAILURES as error:
            raise KafkaUnreachableError(operator, error) from None
        sys.stdout.write("".join(f"{line}\n" for line in changes) or "every agency's access is as the register says\n")
        return 0
    load(_register_file())  # a register it cannot read stops it now, not after a first round
    await watch(access, _register_file(), operator)
    return 0  # pragma: no cover - watch runs until stopped


async def _grant(
    args: argparse.Namespace, operator: OperatorKafkaSettings, access: AgencyAccess, trail: AuditTrail | None
) -> int:
    if not operator.agency_bootstrap_servers or not operator.ca_file:
        raise AccessRefusedError(
            "grant needs to know where agencies connect: set TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS (the TLS "
            'listener, host:port) and TIMPORA_KAFKA_CA_FILE; run eval "$(deploy/local/stack env)" first'
        )
    register_file = _register_file()
    register, moment = load(register_file), datetime.now(UTC)
    where = f"the register {register_file}"
    access.refusal(register, args.agency, moment, where=where)
    if trail is None:
        raise AuditUnavailableError(f"{_no_trail()}: nothing was granted")
    actor = audit.Actor.command(args.operator)
    try:
        connection = await trail.connect()
    except AuditUnavailableError as error:
        raise AuditUnavailableError(f"{error}: nothing was granted") from None
    try:
        try:
            before = await access.rules(args.agency)
            credentials = await access.grant(
                register,
                args.agency,
                moment,
                agency_servers=operator.agency_bootstrap_servers,
                ca_file=operator.ca_file,
                where=where,
            )
        except _KAFKA_FAILURES as error:
            raise KafkaUnreachableError(operator, error) from None
        try:
            await trail.record(
                actor,
                "kafka.grant",
                args.agency,
                old={"principal": credentials.username, "topics": _topics_of(before)} if before else None,
                new={
                    "principal": credentials.username,
                    "topics": list(credentials.topics),
                    "group_prefix": credentials.group_prefix,
                    "rotation": bool(before),
                },
                connection=connection,
            )
            await connection.commit()
        except (OSError, SQLAlchemyError, TimeoutError) as error:
            # Nobody has seen the new password: the login goes again rather than stay unrecorded.
            await access.revoke(args.agency)
            raise AuditUnavailableError(
                f"the grant could not be recorded ({type(error).__name__}): its login was removed again; "
                f"check {trail.source} and grant again"
            ) from None
    finally:
        await connection.close()
    sys.stdout.write("".join(f"{line}\n" for line in credentials.lines()))
    _say(
        f"{args.agency} may read {' and '.join(credentials.topics)}, in consumer groups named "
        f"{credentials.group_prefix}…; the password is shown this once (recorded in the admin audit log)"
    )
    return 0


async def _revoke(
    args: argparse.Namespace, operator: OperatorKafkaSettings, access: AgencyAccess, trail: AuditTrail | None
) -> int:
    actor = audit.Actor.command(args.operator)
    principal = agency_username(operator.admin().catalog, args.agency)
    try:
        before = await access.rules(args.agency)
        removed = await access.revoke(args.agency)
    except _KAFKA_FAILURES as error:
        raise KafkaUnreachableError(operator, error) from None
    _say(f"{args.agency}: {'access revoked' if removed else 'had no access'}")
    if not removed:
        return 0
    if trail is None:
        raise AuditUnavailableError(f"revoked, but not recorded: {_no_trail()}")
    try:
        await trail.record(
            actor,
            "kafka.revoke",
            args.agency,
            old={"principal": principal, "topics": _topics_of(before)},
            new={"principal": principal, "topics": []},
        )
    except AuditUnavailableError as error:
        # Access taken is never held back for the log: revoked, and said to be unrecorded.
        raise AuditUnavailableError(f"revoked, but not recorded: {error}") from None
    return 0


_SETTINGS_EPILOG = (
    "environment: TIMPORA_KAFKA_BOOTSTRAP_SERVERS, TIMPORA_KAFKA_SASL_MECHANISM, TIMPORA_KAFKA_USERNAME, "
    "TIMPORA_KAFKA_PASSWORD, TIMPORA_KAFKA_NAMESPACE (the operator's connection: "
    'eval "$(deploy/local/stack env)" sets them)'
)
_REGISTER_EPILOG = f"{_REGISTER_VARIABLE} (the register; the shipped one if unset)"
_AUDIT_EPILOG = (
    f"{AUDIT_DATABASE_VARIABLES[0]}, else {AUDIT_DATABASE_VARIABLES[1]} (the database of the admin audit log)"
)
_ACTIONS: dict[str, tuple[str, str, str]] = {
    # action: (help, description, what it reads besides the operator's connection)
    "grant": (
        "new credentials for an agency (a rotation if it had some) and its ACLs",
        (
            "Creates or rotates the agency's SCRAM-SHA-512 login and makes its ACLs exactly what the register allows. "
            "Prints the KAFKA_* lines the agency's client needs (the password this once) on stdout; recorded in the "
            "admin audit log with --operator and your OS user. Refused, changing nothing, if it cannot be recorded."
        ),
        (
            f"TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS, TIMPORA_KAFKA_CA_FILE (what agencies are told), "
            f"{_REGISTER_EPILOG}, {_AUDIT_EPILOG}"
        ),
    ),
    "revoke": (
        "remove an agency's ACLs and credentials",
        (
            "Removes the agency's ACLs (an open connection is refused from its next request on), then its login. "
            "Recorded in the admin audit log with --operator and your OS user (if the log cannot be written, the "
            "access is revoked all the same and the command says so, exit status 1)."
        ),
        _AUDIT_EPILOG,
    ),
    "sync": (
        "bring every granted agency's ACLs to what the register says now",
        (
            "One round of what watch does: an agency removed from the register, or whose agreement is not in "
            "force, loses its ACLs and login; one whose terms changed gets exactly its new ACLs. Each change is "
            "recorded in the admin audit log as the access keeper's."
        ),
        f"{_REGISTER_EPILOG}, {_AUDIT_EPILOG}",
    ),
    "watch": (
        "sync whenever the register or the day changes, until stopped",
        (
            f"Runs beside the services: every {WATCH_EVERY_S:g} s, agencies' access follows the register on disk "
            "(a broken file keeps the last good one; one that cannot be loaded at start stops it). Each change is "
            "recorded in the admin audit log as the access keeper's; a change that cannot be recorded is made all "
            "the same, and said."
        ),
        f"{_REGISTER_EPILOG}, {_AUDIT_EPILOG}",
    ),
}


def _one_line(text: str) -> str:
    """A message on one line (a YAML parser's points to the column, with a caret under a copy of the line)."""
    parts = [line.strip().rstrip(":") for line in text.splitlines()]
    return "; ".join(part for part in parts if part.strip("^ "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpora-agencies", description="An agency's access to its Kafka topics.")
    area = parser.add_subparsers(dest="area", required=True)
    kafka = area.add_parser(
        "kafka",
        help="credentials and ACLs on the broker",
        description="Agencies' credentials and ACLs on the broker, as the register allows them.",
        epilog=_SETTINGS_EPILOG,
    )
    actions = kafka.add_subparsers(dest="action", required=True)
    for action, (summary, description, reads) in _ACTIONS.items():
        sub = actions.add_parser(
            action, help=summary, description=description, epilog=f"{_SETTINGS_EPILOG}; also {reads}"
        )
        if action in {"grant", "revoke"}:
            sub.add_argument("agency", help="the agency id, as in the register")
            audit.operator_argument(sub)
    args = parser.parse_args(argv)
    # The client library's own complaints (a node that does not answer) would bury the one line that says why.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL + 1)
    try:
        operator = OperatorKafkaSettings()
    except ValidationError as error:
        sys.stderr.write("".join(f"timpora-agencies: {line}\n" for line in settings_refused(error)))
        return 2
    try:
        return asyncio.run(_run(args, operator))
    except ValidationError as error:  # the audit database's URL
        sys.stderr.write("".join(f"timpora-agencies: {line}\n" for line in settings_refused(error)))
        return 2
    except (
        AccessRefusedError,
        AuditUnavailableError,
        ConfigFileError,
        KafkaSecurityError,
        KafkaUnreachableError,
        ValueError,
    ) as error:
        sys.stderr.write(f"timpora-agencies: {_one_line(str(error))}\n")
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
