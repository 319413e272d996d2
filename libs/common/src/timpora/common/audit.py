"""The admin audit log: every operator action, who took it, and what it changed (old and new values, secrets
masked). Append-only, enforced by PostgreSQL, in the same way as the disclosure log (timpora.common.disclosures):

* it lives in its own schema, ``audit``, created by the database bootstrap (:func:`ddl`) and owned by the role no
  service logs in as; each service's role may only INSERT and SELECT. A service's own migration cannot make it so
  (whoever creates a table owns it, and an owner can do anything to it), which is why the bootstrap does;
* a trigger the owner holds refuses UPDATE, DELETE and TRUNCATE even to the owner by mistake.

Who acted: for an admin API call, the holder of the operator key (and the key's id); for a command, the name given
with its required ``--operator NAME`` and the OS user who ran it; for a change of the register, the file (who
edited it is in its version control); for what a keeper does on its own as the register changes (the agencies'
Kafka access keeper revoking or narrowing an agency's rules), the keeper, by name, and the OS user it runs as.

Values are masked before they are written (:func:`mask`): webhook secrets, keys, tokens and passwords, and the
userinfo and query of URLs, never reach the log. Every service in a database writes to that database's log, with
its name; an entry is written in the transaction of the change it records, so neither commits without the other.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    String,
    Table,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from timpora.common.settings import ServiceSettings

SCHEMA = "audit"
MASK = "***"

metadata = MetaData(schema=SCHEMA)

# As services append to and read it; created by :func:`ddl`, not by a service's migrations.
audit_log = Table(
    "log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("service", String(20), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("os_user", String(100)),
    Column("key_id", PG_UUID(as_uuid=True)),
    Column("action", String(100), nullable=False),
    Column("target", String(300), nullable=False),
    Column("old_value", JSONB),
    Column("new_value", JSONB),
)


class ActorKind(StrEnum):
    OPERATOR_KEY = "operator-key"  # an admin API call, by the holder of an operator key
    COMMAND = "command"  # a command, by the operator it names and the OS user who ran it
    REGISTER = "register"  # a change of the register file, as a service took it
    SYSTEM = "system"  # a change a keeper makes on its own, following the register (no operator ran it)
    OFFICER = "officer"  # an officer changing their own portal account (a password, a second factor)


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str
    key_id: UUID | None = None
    os_user: str | None = None

    @classmethod
    def command(cls, operator: str) -> Actor:
        """The operator who ran a command: the name they gave, and the OS user who ran it."""
        return cls(ActorKind.COMMAND, operator, os_user=_os_user())

    @classmethod
    def operator_key(cls, holder: str, key_id: UUID) -> Actor:
        return cls(ActorKind.OPERATOR_KEY, holder, key_id=key_id)

    @classmethod
    def register(cls, path: object) -> Actor:
        return cls(ActorKind.REGISTER, f"register file {path}")

    @classmethod
    def officer(cls, username: str) -> Actor:
        """An officer of the portal, acting on their own account from a logged-in session."""
        return cls(ActorKind.OFFICER, username)

    @classmethod
    def system(cls, name: str) -> Actor:
        """A process acting on its own (``the access keeper``), with the OS user it runs as."""
        return cls(ActorKind.SYSTEM, name, os_user=_os_user())


def _os_user() -> str | None:
    # The account the process runs as, from the system's user database: not $USER or $LOGNAME, which whoever
    # runs the command can set to any name.
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container's uid without a passwd entry
        return None


# --- masking -------------------------------------------------------------------------------------------------

#: Keys whose values are secret wherever they appear (``secret_env`` only names a variable, and is kept).
#: Matched on the key lowercased without ``_`` and ``-``, so ``apiKey``, ``X-Api-Key`` and ``client_secret`` are too.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|passphrase|token|key(pem|der)?|credential|authorization|bearer|cookie)s?$"
)
#: A URL path segment that looks like a token (Slack's and many webhook receivers' URLs carry one there): long,
#: of a token's characters, with letters and digits both.
_PATH_TOKEN = re.compile(r"^(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[^/?#]{16,}$")
#: Values that are one of this system's secrets whatever their key: API keys, operator tokens, webhook secrets.
_SECRET_VALUE = re.compile(r"^(tak_|tao_|tsk_|tmp_|whsec_)\S+$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def mask(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    """``value`` with every secret replaced by ``***``: values under secret-sounding keys, this system's keys and
    tokens, pydantic secrets, and in URLs the userinfo, token-like path segments and every query value (tokens
    ride there)."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, Mapping):
        return {
            str(key): MASK if _secret_key(str(key)) and item is not None else mask(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [mask(item) for item in value]
    if isinstance(value, str):
        return _masked_text(value)
    if isinstance(value, UUID | date | time):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value


def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key.lower().replace("_", "").replace("-", "")) is not None


def _masked_text(text: str) -> str:
    if _SECRET_VALUE.match(text):
        return MASK
    if _URL.match(text):
        return _masked_url(text)
    return text


def _masked_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host[2]}" if host[1] else parts.netloc
    query = urlencode([(name, MASK) for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    if parts.query and not query:
        query = MASK  # a query that is not name=value pairs is a token on its own
    path = "/".join(MASK if _PATH_TOKEN.match(segment) else segment for segment in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


# --- writing and reading -------------------------------------------------------------------------------------

_INSERT = insert(audit_log)


async def record(
    connection: AsyncSession | AsyncConnection,
    *,
    service: str,
    actor: Actor,
    action: str,
    target: str,
    old: Any = None,  # noqa: ANN401 - any JSON value
    new: Any = None,  # noqa: ANN401 - any JSON value
) -> None:
    """Appends one entry in ``connection``'s transaction: it commits with the change it records, or neither does."""
    await connection.execute(
        _INSERT,
        {
            "service": service,
            "actor_kind": str(actor.kind),
            "actor": actor.name[:200],
            "os_user": actor.os_user,
            "key_id": actor.key_id,
            "action": action,
            "target": target[:300],
            "old_value": mask(old),
            "new_value": mask(new),
        },
    )


class AuditEntry(BaseModel):
    """One entry of the admin audit log, as operators read it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    recorded_at: datetime
    service: str
    actor_kind: str
    actor: str
    os_user: str | None
    key_id: UUID | None
    action: str
    target: str
    old_value: Any
    new_value: Any


async def read(
    connection: AsyncSession | AsyncConnection,
    *,
    before: int | None = None,
    limit: int = 100,
    service: str | None = None,
    action: str | None = None,
    target: str | None = None,
    targets: Collection[str] | None = None,
    actor_suffix: str | None = None,
) -> list[AuditEntry]:
    """Entries newest first, ``limit`` at a time; the next page is ``before`` the last one's id. ``targets``: only
    the entries about one of them, or (``actor_suffix``) made by an actor whose name ends so — an office's operator
    reads what concerns the agencies of its area, and what its own officers did."""
    statement = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(audit_log.c.id < before)
    for column, wanted in (("service", service), ("action", action), ("target", target)):
        if wanted is not None:
            statement = statement.where(audit_log.c[column] == wanted)
    if targets is not None:
        about = audit_log.c.target.in_(sorted(targets))
        by = audit_log.c.actor.endswith(actor_suffix, autoescape=True) if actor_suffix else None
        statement = statement.where(about if by is None else or_(about, by))
    rows = (await connection.execute(statement)).all()
    return [AuditEntry.model_validate(row) for row in rows]


def operator_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--operator NAME`` every changing command requires: who is recorded as having run it."""
    parser.add_argument(
        "--operator", required=True, help="your name, recorded in the admin audit log with your OS user"
    )


async def read_command(settings: ServiceSettings, argv: Sequence[str]) -> int:
    """``audit [--limit N] [--before ID] [--service NAME] [--action ACTION] [--target TARGET]``: the admin audit
    log, newest first, one JSON object a line (for a service without an admin API, and for scripts)."""
    from timpora.common.db.engine import make_engine  # noqa: PLC0415 - the engine only for this command

    parser = argparse.ArgumentParser(prog=f"timpora-{settings.service_name} audit")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--before", type=int)
    parser.add_argument("--service")
    parser.add_argument("--action")
    parser.add_argument("--target")
    args = parser.parse_args(list(argv))
    engine = make_engine(
        settings.database, application_name=f"timpora-{settings.service_name}-audit", schema=settings.service_name
    )
    try:
        async with engine.connect() as connection:
            entries = await read(
                connection,
                before=args.before,
                limit=args.limit,
                service=args.service,
                action=args.action,
                target=args.target,
            )
    finally:
        await engine.dispose()
    for entry in entries:
        sys.stdout.write(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False) + "\n")
    return 0


def ddl(owner: str, writers: Sequence[str]) -> list[str]:
    """The statements that create the log (idempotently) owned by ``owner``, a role no service logs in as, and let
    ``writers`` (the services' roles) INSERT and SELECT, nothing more."""
    schema, quoted_owner = SCHEMA, _quote(owner)
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {quoted_owner}",
        f"""CREATE TABLE IF NOT EXISTS {schema}.log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            service varchar(20) NOT NULL,
            actor_kind varchar(20) NOT NULL,
            actor varchar(200) NOT NULL,
            os_user varchar(100),
            key_id uuid,
            action varchar(100) NOT NULL,
            target varchar(300) NOT NULL,
            old_value jsonb,
            new_value jsonb
        )""",
        # Which database role wrote the entry: the database's to say, never the writer's (no grant on the column).
        f"ALTER TABLE {schema}.log ADD COLUMN IF NOT EXISTS db_role text NOT NULL DEFAULT session_user",
        f"CREATE INDEX IF NOT EXISTS log_by_target ON {schema}.log (target, id)",
        f"""CREATE OR REPLACE FUNCTION {schema}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the admin audit log is append-only';
        END $$""",
        f"DROP TRIGGER IF EXISTS log_append_only ON {schema}.log",
        (
            f"CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.log "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.append_only()"
        ),
        f"ALTER TABLE {schema}.log OWNER TO {quoted_owner}",
        f"ALTER FUNCTION {schema}.append_only() OWNER TO {quoted_owner}",
    ]
    for writer in writers:
        role = _quote(writer)
        statements += [
            f"GRANT USAGE ON SCHEMA {schema} TO {role}",
            f"GRANT SELECT ON {schema}.log TO {role}",
            # Only what an entry says, column by column: its number, its time and the role that wrote it are the
            # database's (a writer cannot backdate an entry, take another's number or claim another role).
            f"REVOKE INSERT ON {schema}.log FROM {role}",
            f"GRANT INSERT ({', '.join(_WRITTEN)}) ON {schema}.log TO {role}",
        ]
    return statements


#: The columns a service writes; ``id``, ``recorded_at`` and ``db_role`` the database fills in.
_WRITTEN = ("service", "actor_kind", "actor", "os_user", "key_id", "action", "target", "old_value", "new_value")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
