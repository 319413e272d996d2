"""Fixtures shared by every test: the real stack (Kafka and PostgreSQL) and per-service settings.

Isolation: the tests have their own database (``timpora_test``), and every test has its own Kafka
namespace — its own topics and consumer groups (see ``timpora.common.topics``), deleted when it ends.
No test reads what another (or a developer's running system on the same broker) published, and no
test's consumer joins a group that another process is a member of.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import stack as stacks
from tests.support.cluster import Cluster
from tests.support.cluster import cluster as start_cluster
from tests.support.faults import kafka_libs
from tests.support.kafka import delete_namespace, new_namespace
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import make_engine
from timpora.common.db.migrations import upgrade
from timpora.common.settings import DatabaseSettings, KafkaSettings

TEST_DATABASE = "timpora_test"


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
def cluster(stack: stacks.Stack) -> Iterator[Cluster]:
    """A second stack with Kafka as a cluster of three (tests/support/cluster.py), started once for the run."""
    if not kafka_libs().is_dir():
        message = f"the Kafka jars of the local stack are not at {kafka_libs()} ({stack.source} is in use)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs on the local stack: {message}")
        pytest.skip(message)
    # Under /tmp, which PostgreSQL's own user (when the tests run as root) can pass through; the run's temporary
    # folder is its owner's alone.
    directory = Path(tempfile.mkdtemp(prefix="timpora-cluster-"))
    directory.chmod(0o711)
    try:
        with start_cluster(directory / "stack") as started:
            yield started
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def kafka_settings(stack: stacks.Stack) -> AsyncIterator[KafkaSettings]:
    """The broker, under a namespace of this test's own; its topics are deleted when the test ends."""
    settings = stack.kafka.model_copy(update={"namespace": new_namespace()})
    yield settings
    await delete_namespace(settings)


@pytest.fixture(scope="session")
async def database_urls(stack: stacks.Stack) -> dict[str, str]:
    """A fresh ``timpora_test`` database with one role and schema per service, as the services get them.
    Test roles have their own names, so the passwords of a running dev stack's roles stay untouched."""
    return await fresh_database(stack.pg_admin_url, TEST_DATABASE, role_prefix="timpora_test")


@pytest.fixture(scope="session")
def database_settings(database_urls: dict[str, str]) -> dict[str, DatabaseSettings]:
    return {name: DatabaseSettings(url=url, pool_size=5) for name, url in database_urls.items()}


@pytest.fixture
async def sharing_engine(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[AsyncEngine]:
    """An engine on the sharing service's schema of the test database, migrated to its latest version."""
    engine = make_engine(database_settings["sharing"], application_name="test", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    yield engine
    await engine.dispose()


@pytest.fixture
async def database_admin(stack: stacks.Stack, database_urls: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database: it sees every service's tables and can lock them."""
    del database_urls  # the database exists once they do
    url = make_url(stack.pg_admin_url).set(drivername="postgresql", database=TEST_DATABASE)
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield connection
    await connection.close()
