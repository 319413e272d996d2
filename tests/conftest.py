"""Fixtures shared by every test: the real stack (Kafka and PostgreSQL) and per-service settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import stack as stacks
from timpora.common.db.bootstrap import fresh_database
from timpora.common.settings import DatabaseSettings, KafkaSettings

TEST_DATABASE = "timpora_test"
# The tests' sharing services read the registry topic as their own consumer group, so that a developer's
# running sharing service (group timpora-sharing-projections) neither shares partitions with them nor waits.
os.environ.setdefault("TIMPORA_SHARING_CONSUMER_GROUP", f"timpora-test-sharing-{uuid.uuid4().hex[:8]}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realstack)


@pytest.fixture(scope="session")
def stack() -> Iterator[stacks.Stack]:
    with stacks.resolve() as found:
        if found is None:
            message = (
                "no Kafka/PostgreSQL: set TIMPORA_KAFKA_BOOTSTRAP_SERVERS and TIMPORA_PG_ADMIN_URL, "
                "start deploy/local/stack up, or run Docker for testcontainers"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(f"real-stack tests never skip in CI: {message}")
            pytest.skip(message)
        yield found


@pytest.fixture(scope="session")
def kafka_settings(stack: stacks.Stack) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=stack.kafka_bootstrap_servers)


@pytest.fixture(scope="session")
async def database_urls(stack: stacks.Stack) -> dict[str, str]:
    """A fresh ``timpora_test`` database with one role and schema per service, as the services get them.
    Test roles have their own names, so the passwords of a running dev stack's roles stay untouched."""
    return await fresh_database(stack.pg_admin_url, TEST_DATABASE, role_prefix="timpora_test")


@pytest.fixture(scope="session")
def database_settings(database_urls: dict[str, str]) -> dict[str, DatabaseSettings]:
    return {name: DatabaseSettings(url=url, pool_size=5) for name, url in database_urls.items()}
