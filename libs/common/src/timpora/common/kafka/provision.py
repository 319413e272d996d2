"""Provisioning a namespace on a locked-down broker, as the operator: the services' principals, their ACLs
and the catalog's fixed topics. Idempotent; the local stack runs it on every ``up``, docker-compose in its
``kafka-setup`` service.

    python -m timpora.common.kafka.provision

reads the operator's connection from ``TIMPORA_KAFKA_*`` and each service's principal from
``TIMPORA_<SERVICE>_KAFKA__SASL_USERNAME`` / ``..._SASL_PASSWORD`` (what ``deploy/local/stack env`` prints).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed
from pydantic import ValidationError

from timpora.common.kafka.acls import SERVICES, ServiceName, service_bindings
from timpora.common.kafka.admin import admin_session, ensure_topics
from timpora.common.kafka.security import KafkaSecurityError, create_acls, set_scram_password
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings, refuse_placeholder, settings_refused


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    password: str


#: How long provisioning waits for a broker for every copy of a topic (a cluster's nodes starting one by one).
BROKERS_WAIT_S = 180.0


class TooFewBrokersError(Exception):
    """Fewer brokers run than each topic is to be kept on, and none came in time."""


async def enough_brokers(admin: KafkaSettings, *, timeout_s: float = BROKERS_WAIT_S) -> int:
    """Waits until as many brokers are in the cluster as each topic keeps copies on (``replicas``); how many are.

    Why: a cluster refuses to create a topic with more copies than it has brokers, and docker-compose calls a node
    healthy once a majority of them answer (deploy/compose/kafka-healthy), so that one node down leaves the others
    healthy: the first provisioning of a cluster may come before its last node."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        async with admin_session(admin) as client:
            brokers = len((await client.describe_cluster())["brokers"])
        if brokers >= admin.replicas:
            return brokers
        if asyncio.get_running_loop().time() > deadline:
            raise TooFewBrokersError(
                f"{brokers} Kafka broker(s) run and each topic is to be kept on {admin.replicas} "
                f"(TIMPORA_KAFKA_REPLICAS): start the missing node(s), then provision again"
            )
        await asyncio.sleep(1.0)


async def provision(
    admin: KafkaSettings, services: Mapping[ServiceName, Principal], *, brokers_wait_s: float = BROKERS_WAIT_S
) -> None:
    """Creates (or re-keys) each service's user, grants its rules in ``admin``'s namespace and creates the
    fixed topics, once a broker runs for every copy of them. A service's password is set again each time, so
    rotating one is: change it, run this."""
    catalog = admin.catalog
    await enough_brokers(admin, timeout_s=brokers_wait_s)
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


def placeholders_in(environ: Mapping[str, str]) -> list[str]:
    """One line per service password in ``environ`` that is a placeholder: the variable and why, never the value.
    The service would refuse it at start anyway; the broker should not be given it either."""
    refused: list[str] = []
    for service in SERVICES:
        variable = f"TIMPORA_{service.upper()}_KAFKA__SASL_PASSWORD"
        if environ.get(f"TIMPORA_{service.upper()}_KAFKA__SASL_USERNAME") and variable in environ:
            try:
                refuse_placeholder(environ[variable])
            except ValueError as error:
                refused.append(f"{variable} refused: {error}")
    return refused


def _unreachable(operator: OperatorKafkaSettings, error: Exception) -> str:
    """One line for a broker that could not be reached, or would not let the operator in."""
    who = f"at {operator.bootstrap_servers} as {operator.username or 'nobody (no SASL)'}"
    kind = type(error).__name__
    if isinstance(error, SaslAuthenticationFailed | AuthenticationFailedError):
        return f"Kafka {who} refused the login ({kind}); is TIMPORA_KAFKA_PASSWORD the one the broker has?"
    return f"cannot reach Kafka {who} ({kind}); is the stack up?"


def main() -> int:
    try:
        operator = OperatorKafkaSettings()
    except ValidationError as error:
        sys.stderr.write("".join(f"provision: {line}\n" for line in settings_refused(error)))
        return 2
    refused = placeholders_in(os.environ)
    if refused:
        sys.stderr.write("".join(f"provision: {line}\n" for line in refused))
        return 2
    services = principals_from(os.environ)
    # aiokafka logs each failed connection as well as raising: the exception, said below in one line, is enough.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(provision(operator.admin(), services))
    except (KafkaError, OSError) as error:  # TimeoutError is an OSError
        sys.stderr.write(f"provision: {_unreachable(operator, error)}\n")
        return 1
    except (KafkaSecurityError, TooFewBrokersError) as error:
        sys.stderr.write(f"provision: {error}\n")
        return 1
    names = ", ".join(f"{service} as {principal.username}" for service, principal in services.items()) or "none"
    sys.stderr.write(f"kafka: namespace {operator.namespace} provisioned; service principals: {names}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
