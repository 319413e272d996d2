"""Creates each service's login role, database and schema, idempotently, from an administrator URL.

Every service gets its own role that owns its own schema and nothing else, so PostgreSQL itself keeps
one service out of another's tables. Run by the local stack, by docker-compose's one-shot
``db-bootstrap`` container and by the tests::

    TIMPORA_PG_ADMIN_URL=postgresql://postgres:...@127.0.0.1:15432/timpora \\
    TIMPORA_REGISTRY_DATABASE__URL=postgresql+asyncpg://timpora_registry:...@127.0.0.1:15432/timpora \\
    ... python -m timpora.common.db.bootstrap
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from timpora.common import audit, disclosures
from timpora.common.settings import refuse_placeholder

#: Every service with a database role and schema of its own. The portal is one (it keeps its officers, their
#: sessions and its audit entries) though it has no Kafka principal: timpora.common.kafka.acls lists those.
SERVICES = ("registry", "alerts", "sharing", "portal")
#: The services that append to the disclosure log: alerts and sharing disclose personal data to agencies; the
#: registry records its own staff's reads (the controller's processing, recorded all the same).
DISCLOSING = ("registry", "alerts", "sharing")
#: Owns the disclosure log and the admin audit log; nobody logs in as it (see timpora.common.disclosures and
#: timpora.common.audit).
DISCLOSURE_OWNER = "timpora_disclosure_owner"


@dataclass(frozen=True, slots=True)
class ServiceDatabase:
    schema: str
    role: str
    password: str
    database: str

    @classmethod
    def from_url(cls, schema: str, url: str) -> ServiceDatabase:
        parsed = make_url(url)
        if not parsed.username or not parsed.password or not parsed.database:
            raise ValueError(f"the {schema} database URL needs a user, a password and a database name")
        return cls(schema=schema, role=parsed.username, password=parsed.password, database=parsed.database)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _plain_url(url: str) -> str:
    """asyncpg takes postgresql:// URLs; accept SQLAlchemy's postgresql+asyncpg:// too."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def bootstrap(admin_url: str, services: list[ServiceDatabase], *, owner: str = DISCLOSURE_OWNER) -> None:
    disclosing = {service.database for service in services if service.schema in DISCLOSING}
    if len(disclosing) > 1:
        # Two logs would answer a data subject's request by halves.
        raise ValueError("registry, alerts and sharing must share one database: the disclosure log is one, in it")
    admin = make_url(_plain_url(admin_url))
    server = await asyncpg.connect(admin.set(database="postgres").render_as_string(hide_password=False))
    try:
        for database in sorted({service.database for service in services}):
            exists = await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await server.execute(f"CREATE DATABASE {_quote(database)}")
        for service in services:
            await _ensure_role(server, service)
        if not await server.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner):
            await server.execute(f"CREATE ROLE {_quote(owner)} NOLOGIN")
    finally:
        await server.close()
    for service in services:
        connection = await asyncpg.connect(admin.set(database=service.database).render_as_string(hide_password=False))
        try:
            await _ensure_schema(connection, service)
        finally:
            await connection.close()
    for database in sorted({service.database for service in services}):
        readers = [s.role for s in services if s.database == database and s.schema in DISCLOSING]
        # Every service records its operators' actions, in the admin audit log of its database.
        writers = [s.role for s in services if s.database == database]
        connection = await asyncpg.connect(admin.set(database=database).render_as_string(hide_password=False))
        try:
            async with connection.transaction():
                # Instances bootstrapping at once (compose, tests) queue here.
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-ddl'))")
                for statement in [*disclosures.ddl(owner, readers), *audit.ddl(owner, writers)]:
                    await connection.execute(statement)
        finally:
            await connection.close()


async def _ensure_role(server: asyncpg.Connection, service: ServiceDatabase) -> None:
    exists = await server.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service.role)
    verb = "ALTER" if exists else "CREATE"
    # Passwords cannot be bound as parameters in DDL; quote them as literals instead.
    password = "'" + service.password.replace("'", "''") + "'"
    await server.execute(
        f"{verb} ROLE {_quote(service.role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password}"
    )


async def _ensure_schema(connection: asyncpg.Connection, service: ServiceDatabase) -> None:
    role, schema = _quote(service.role), _quote(service.schema)
    async with connection.transaction():
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
        await connection.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
        await connection.execute(f"ALTER ROLE {role} IN DATABASE {_quote(service.database)} SET search_path = {schema}")
        await connection.execute(f"GRANT CONNECT ON DATABASE {_quote(service.database)} TO {role}")
        await connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


async def fresh_database(admin_url: str, database: str, *, role_prefix: str) -> dict[str, str]:
    """Drops and recreates ``database`` with a role and schema per service, named ``{role_prefix}_{service}``
    with new random passwords; returns each service's SQLAlchemy URL. For tests and benchmarks."""
    admin = make_url(_plain_url(admin_url))
    server = await asyncpg.connect(admin.set(database="postgres").render_as_string(hide_password=False))
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {_quote(database)} WITH (FORCE)")
    finally:
        await server.close()
    services = [
        ServiceDatabase(schema=name, role=f"{role_prefix}_{name}", password=secrets.token_hex(16), database=database)
        for name in SERVICES
    ]
    await bootstrap(admin_url, services, owner=f"{role_prefix}_disclosure_owner")
    return {
        service.schema: admin.set(
            drivername="postgresql+asyncpg", username=service.role, password=service.password, database=database
        ).render_as_string(hide_password=False)
        for service in services
    }


def services_from_environment(environ: dict[str, str]) -> list[ServiceDatabase]:
    found = []
    for schema in SERVICES:
        url = environ.get(f"TIMPORA_{schema.upper()}_DATABASE__URL")
        if url:
            found.append(ServiceDatabase.from_url(schema, url))
    return found


def main() -> int:
    admin_url = os.environ.get("TIMPORA_PG_ADMIN_URL")
    if not admin_url:
        print("TIMPORA_PG_ADMIN_URL is not set", file=sys.stderr)
        return 2
    services = services_from_environment(dict(os.environ))
    if not services:
        print("no TIMPORA_<SERVICE>_DATABASE__URL is set; nothing to create", file=sys.stderr)
        return 2
    # It sets the services' passwords: one that is a placeholder would be in force until someone noticed.
    passwords = {"TIMPORA_PG_ADMIN_URL": make_url(admin_url).password} | {
        f"TIMPORA_{service.schema.upper()}_DATABASE__URL": service.password for service in services
    }
    for variable, password in passwords.items():
        if password is None:
            continue  # the administrator by peer or trust authentication
        try:
            refuse_placeholder(password)
        except ValueError as error:
            print(f"{variable} refused: {error}", file=sys.stderr)
            return 2
    asyncio.run(bootstrap(admin_url, services))
    print("databases ready: " + ", ".join(f"{s.database}.{s.schema} (role {s.role})" for s in services))
    return 0


if __name__ == "__main__":
    sys.exit(main())
