"""Provisioning a namespace on a locked-down broker, as the operator: the services' principals, their ACLs
and the catalog's fixed topics. Idempotent; the local stack runs it on every ``up``, docker-compose in its
``kafka-setup`` service.

    python -m timpora.common.kafka.provision

reads the operator's connection from ``TIMPORA_KAFKA_*`` and each service's principal from
``TIMPORA_<SERVICE>_KAFKA__SASL_USERNAME`` / ``..._SASL_PASSWORD`` (what ``deploy/local/stack env`` prints).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from timpora.common.kafka.acls import SERVICES, ServiceName, service_bindings
from timpora.common.kafka.admin import admin_session, ensure_topics
from timpora.common.kafka.security import create_acls, set_scram_password
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    password: str


async def provision(admin: KafkaSettings, services: Mapping[ServiceName, Principal]) -> None:
    """Creates (or re-keys) each service's user, grants its rules in ``admin``'s namespace and creates the
    fixed topics. A service's password is set again each time, so rotating one is: change it, run this."""
    catalog = admin.catalog
    await ensure_topics(admin, catalog.static)
    async with admin_session(admin) as client:
        for service, principal in services.items():
            await set_scram_password(client, principal.username, principal.password)
            await create_acls(client, service_bindings(catalog, service, principal.username))


def principals_from(environ: Mapping[str, str]) -> dict[ServiceName, Principal]:
    found: dict[ServiceName, Principal] = {}
    for service in SERVICES:
        prefix = f"TIMPORA_{service.upper()}_KAFKA__SASL_"
        username, password = environ.get(f"{prefix}USERNAME"), environ.get(f"{prefix}PASSWORD")
        if username and password:
            found[service] = Principal(username, password)
    return found


def main() -> int:
    operator = OperatorKafkaSettings()
    services = principals_from(os.environ)
    asyncio.run(provision(operator.admin(), services))
    names = ", ".join(f"{service} as {principal.username}" for service, principal in services.items()) or "none"
    sys.stderr.write(f"kafka: namespace {operator.namespace} provisioned; service principals: {names}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
