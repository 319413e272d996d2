"""The locked-down broker: each agency reads its own topics and can do nothing else; each service only its job.

On the local stack's real broker (SASL/SCRAM-SHA-512, StandardAuthorizer, TLS for agencies), in the test's own
namespace, with logins made for the test (``timpora-agencies kafka grant``'s code, the services' provisioning).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import register as registers
from tests.support.kafka import service_principals
from tests.support.stack import REPO, Stack
from timpora.common import audit
from timpora.common.kafka.acls import ServiceName, agency_username
from timpora.common.kafka.admin import admin_session, ensure_topics
from timpora.common.kafka.broker import client_options
from timpora.common.kafka.security import (
    AclBinding,
    AclFilter,
    KafkaSecurityError,
    Operation,
    PatternType,
    ResourceType,
    create_acls,
    delete_acls,
    describe_acls,
    scram_users,
    set_scram_password,
    user,
)
from timpora.common.register import Register, load
from timpora.common.register.kafka_access import (
    AccessRefusedError,
    AgencyAccess,
    AuditTrail,
    Credentials,
    main,
)
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings

pytestmark = pytest.mark.timeout(180)

POLICE, REGENCY = "polres-bangkalan", "pemkab-bangkalan"  # the police: events and alerts; the regency: events
NOW = datetime.now(UTC)


@pytest.fixture
def operator(stack: Stack) -> OperatorKafkaSettings:
    if not stack.locked_down or stack.operator is None or not stack.operator.agency_bootstrap_servers:
        message = f"the broker in use ({stack.source}) is not the locked-down local stack"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs on the local stack, which locks Kafka down: {message}")
        pytest.skip(message)
    return stack.operator


@dataclass
class Granted:
    access: AgencyAccess
    register: Register
    kafka: KafkaSettings
    operator: OperatorKafkaSettings
    logins: dict[str, Credentials]

    async def grant(self, agency_id: str, register: Register | None = None) -> Credentials:
        self.logins[agency_id] = await self.access.grant(
            register or self.register,
            agency_id,
            NOW,
            agency_servers=self.operator.agency_bootstrap_servers or "",
            ca_file=self.operator.ca_file or "",
        )
        return self.logins[agency_id]


@pytest.fixture
async def granted(operator: OperatorKafkaSettings, kafka_settings: KafkaSettings, tmp_path: Path) -> Granted:
    # The fixed topics exist, as the operator's provisioning makes them.
    await ensure_topics(kafka_settings, kafka_settings.catalog.static)
    register_file = tmp_path / "register.yaml"
    register_file.write_text(yaml.safe_dump(registers.shipped()), encoding="utf-8")
    found = Granted(AgencyAccess(kafka_settings), load(register_file), kafka_settings, operator, {})
    await found.grant(POLICE)
    await found.grant(REGENCY)
    return found


def as_agency(login: Credentials, **changes: Any) -> KafkaSettings:
    """The agency's client, exactly from the lines ``grant`` printed (TLS to the agencies' listener)."""
    return KafkaSettings(
        bootstrap_servers=login.bootstrap_servers,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=login.username,
        sasl_password=SecretStr(login.password),
        use_tls=True,
        ca_file=login.ca_file,
        request_timeout_ms=10_000,
    ).model_copy(update=changes)


async def _publish(kafka: KafkaSettings, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _read(kafka: KafkaSettings, topics: list[str], group: str, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Reads in a consumer group until ``count`` records came (or 60 s passed); commits what it read."""
    consumer = AIOKafkaConsumer(
        *topics, **client_options(kafka), group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.start()
        deadline = asyncio.get_running_loop().time() + 60
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return found


async def _refused(attempt: Callable[[], Awaitable[object]], *errors: type[Exception]) -> Exception:
    """Runs ``attempt`` until the broker refuses it with one of ``errors`` (a consumer may first poll empty)."""
    with pytest.raises(errors) as refused:
        await asyncio.wait_for(attempt(), timeout=60)
    return refused.value


def _consume(kafka: KafkaSettings, topic: str, group: str) -> Callable[[], Awaitable[object]]:
    async def attempt() -> None:
        consumer = AIOKafkaConsumer(
            topic, **client_options(kafka), group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
        )
        try:
            await consumer.start()
            while True:
                await consumer.getmany(timeout_ms=500)
        finally:
            await consumer.stop()

    return attempt


def _produce(kafka: KafkaSettings, topic: str, *, idempotent: bool) -> Callable[[], Awaitable[object]]:
    async def attempt() -> None:
        options = {"acks": "all", "enable_idempotence": True} if idempotent else {"acks": 1}
        producer = AIOKafkaProducer(**client_options(kafka), **options)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"forged", key=b"k")
        finally:
            await producer.stop()

    return attempt


# --- an agency ---------------------------------------------------------------------------------------------


async def test_an_agency_reads_its_own_topics_in_its_own_groups_and_sees_no_other_topic(granted: Granted) -> None:
    catalog = granted.kafka.catalog
    police = granted.logins[POLICE]
    own = [catalog.agency_events(POLICE).name, catalog.agency_alerts(POLICE).name]
    for topic in own:
        await _publish(granted.kafka, topic, topic.encode())

    records = await _read(as_agency(police), own, f"{police.group_prefix}main", count=2)

    assert sorted(record.value or b"" for record in records) == sorted(topic.encode() for topic in own)
    assert police.topics == tuple(own)
    async with admin_session(as_agency(police)) as client:
        # Metadata lists what a principal may describe: its own two topics, of all the namespace holds.
        assert sorted(name for name in await client.list_topics() if catalog.owns(name)) == sorted(own)


@pytest.mark.parametrize(
    "topic_of",
    [
        pytest.param(lambda catalog: catalog.registry_events.name, id="the registry topic"),
        pytest.param(lambda catalog: catalog.agency_events(REGENCY).name, id="another agency's events"),
        pytest.param(lambda catalog: catalog.alerts_dead_letters.name, id="the alerts dead letters"),
        pytest.param(lambda catalog: catalog.sharing_dead_letters.name, id="the sharing dead letters"),
        pytest.param(lambda catalog: catalog.disclosure_anchors.name, id="the disclosure checkpoints"),
    ],
)
async def test_an_agency_is_refused_every_topic_but_its_own(granted: Granted, topic_of: Callable[[Any], str]) -> None:
    police = granted.logins[POLICE]
    topic = topic_of(granted.kafka.catalog)

    await _refused(_consume(as_agency(police), topic, f"{police.group_prefix}main"), TopicAuthorizationFailedError)


async def test_the_regency_without_a_kafka_channel_is_refused_its_alert_topic(granted: Granted) -> None:
    regency = granted.logins[REGENCY]
    await ensure_topics(granted.kafka, [granted.kafka.catalog.agency_alerts(REGENCY)])

    assert regency.topics == (granted.kafka.catalog.agency_events(REGENCY).name,)
    await _refused(
        _consume(as_agency(regency), granted.kafka.catalog.agency_alerts(REGENCY).name, f"{regency.group_prefix}x"),
        TopicAuthorizationFailedError,
    )


@pytest.mark.parametrize(
    "group_of",
    [
        pytest.param(lambda ns: f"{ns}.agency.{REGENCY}.main", id="another agency's group"),
        pytest.param(lambda ns: f"{ns}.agency.{POLICE}-x.main", id="a longer agency id's group"),
        pytest.param(lambda ns: f"{ns}-sharing-projections", id="the sharing service's group"),
        pytest.param(lambda _ns: "anything", id="a group outside its prefix"),
    ],
)
async def test_an_agency_cannot_join_any_group_outside_its_prefix(
    granted: Granted, group_of: Callable[[str], str]
) -> None:
    police = granted.logins[POLICE]
    group = group_of(granted.kafka.namespace)

    await _refused(
        _consume(as_agency(police), granted.kafka.catalog.agency_events(POLICE).name, group),
        GroupAuthorizationFailedError,
    )


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent producer", "plain producer"])
@pytest.mark.parametrize("own", [True, False], ids=["its own topic", "the registry topic"])
async def test_an_agency_cannot_write_anywhere(granted: Granted, idempotent: bool, own: bool) -> None:  # noqa: FBT001
    catalog = granted.kafka.catalog
    topic = catalog.agency_events(POLICE).name if own else catalog.registry_events.name

    # An idempotent producer is refused its producer id (it may write nowhere); a plain one the topic.
    await _refused(
        _produce(as_agency(granted.logins[POLICE]), topic, idempotent=idempotent),
        ClusterAuthorizationFailedError,
        TopicAuthorizationFailedError,
    )


async def test_an_agency_cannot_create_topics_change_rules_or_logins(granted: Granted) -> None:
    police = as_agency(granted.logins[POLICE])
    async with admin_session(police) as client:
        created = await client.create_topics([NewTopic(f"{granted.kafka.namespace}.sharing.agency.x.v1", 1, 1)])
        ((_name, code, *_),) = created.topic_errors  # type: ignore[attr-defined]
        assert code == TopicAuthorizationFailedError.errno
        widened = AclBinding(
            f"User:{police.sasl_username}",
            ResourceType.TOPIC,
            granted.kafka.catalog.registry_events.name,
            PatternType.LITERAL,
            Operation.READ,
        )
        with pytest.raises(KafkaSecurityError, match="ClusterAuthorizationFailedError"):
            await create_acls(client, [widened])
        with pytest.raises(KafkaSecurityError, match="ClusterAuthorizationFailedError"):
            await set_scram_password(client, "admin", "a-password-of-its-choosing")


@pytest.mark.parametrize(
    "login",
    [
        pytest.param(lambda c: {"sasl_password": SecretStr(c.password + "x")}, id="a wrong password"),
        pytest.param(lambda c: {"sasl_username": f"{c.username}-x"}, id="an unknown user"),
        pytest.param(lambda _c: {"sasl_mechanism": None}, id="no login at all (TLS only)"),
    ],
)
async def test_a_client_without_a_valid_login_is_refused(
    granted: Granted, login: Callable[[Credentials], dict[str, Any]]
) -> None:
    police = granted.logins[POLICE]
    settings = as_agency(police, **login(police))

    await _refused(
        _consume(settings, granted.kafka.catalog.agency_events(POLICE).name, f"{police.group_prefix}m"), KafkaError
    )


async def test_the_services_listener_refuses_a_client_without_a_login(granted: Granted) -> None:
    bare = KafkaSettings(bootstrap_servers=granted.kafka.bootstrap_servers, request_timeout_ms=5_000)

    await _refused(_consume(bare, granted.kafka.catalog.registry_events.name, "anything"), KafkaConnectionError)


# --- rotation, revocation and the register -------------------------------------------------------------------


async def test_granting_again_rotates_the_password_and_revoking_cuts_an_open_consumer_off(granted: Granted) -> None:
    catalog = granted.kafka.catalog
    old = granted.logins[POLICE]
    new = await granted.grant(POLICE)
    assert new.password != old.password
    await _refused(_consume(as_agency(old), catalog.agency_events(POLICE).name, f"{old.group_prefix}m"), KafkaError)

    # A consumer connected with the new login reads, then loses its access with the revocation, at once.
    consumer = AIOKafkaConsumer(
        catalog.agency_events(POLICE).name,
        **client_options(as_agency(new)),
        group_id=f"{new.group_prefix}main",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        await _publish(granted.kafka, catalog.agency_events(POLICE).name, b"before")
        seen: list[bytes | None] = []
        while not seen:
            seen = [r.value for records in (await consumer.getmany(timeout_ms=500)).values() for r in records]
        assert await granted.access.revoke(POLICE)

        async def keep_reading() -> None:
            while True:
                await consumer.getmany(timeout_ms=500)
                await consumer.commit()

        await _refused(keep_reading, TopicAuthorizationFailedError, GroupAuthorizationFailedError)
    finally:
        await consumer.stop()
    await _refused(_consume(as_agency(new), catalog.agency_events(POLICE).name, f"{new.group_prefix}m"), KafkaError)


async def test_an_agency_not_in_the_register_or_without_an_agreement_in_force_is_not_granted(
    granted: Granted, tmp_path: Path
) -> None:
    with pytest.raises(AccessRefusedError, match="not a member"):
        await granted.grant("polres-madiun")
    lapsed = _register(tmp_path, lambda document: _end_agreement(document, REGENCY))
    with pytest.raises(AccessRefusedError, match="no data-sharing agreement in force"):
        await granted.grant(REGENCY, lapsed)


async def test_sync_takes_access_from_a_member_removed_or_whose_agreement_ended_and_narrows_a_changed_one(
    granted: Granted, tmp_path: Path, audit_url: str
) -> None:
    catalog = granted.kafka.catalog
    await granted.grant("desa-lajing")
    trail = AuditTrail(SecretStr(audit_url), "the test's database")
    keeper = AgencyAccess(granted.kafka, trail)

    def change(document: dict[str, Any]) -> dict[str, Any]:
        document["members"] = [entry for entry in document["members"] if entry["id"] != "desa-lajing"]
        _end_agreement(document, REGENCY)
        registers.member(document, POLICE)["channels"]["kafka"] = False
        return document

    try:
        changes = await keeper.sync(_register(tmp_path, change), NOW)
    finally:
        await trail.close()

    assert changes == [
        "desa-lajing: access revoked (not in the register)",
        f"{REGENCY}: access revoked (no agreement in force)",
        f"{POLICE}: access now reads its events topic",
    ]
    # Each change is the access keeper's, in the admin audit log.
    recorded = {
        entry.target: entry
        for agency in ("desa-lajing", REGENCY, POLICE)
        for entry in await _audit(audit_url, granted.kafka, agency)
    }
    assert {agency: (e.action, e.actor_kind, e.actor) for agency, e in recorded.items()} == {
        "desa-lajing": ("kafka.revoke", "system", "the access keeper"),
        REGENCY: ("kafka.revoke", "system", "the access keeper"),
        POLICE: ("kafka.change", "system", "the access keeper"),
    }
    assert recorded[POLICE].old_value["topics"] == sorted(
        [catalog.agency_events(POLICE).name, catalog.agency_alerts(POLICE).name]
    )
    assert recorded[POLICE].new_value["topics"] == [catalog.agency_events(POLICE).name]
    for agency in ("desa-lajing", REGENCY):
        login = granted.logins[agency]
        await _refused(
            _consume(as_agency(login), catalog.agency_events(agency).name, f"{login.group_prefix}m"), KafkaError
        )
    police = granted.logins[POLICE]
    await _publish(granted.kafka, catalog.agency_events(POLICE).name, b"still")
    assert [
        r.value
        for r in await _read(as_agency(police), [catalog.agency_events(POLICE).name], f"{police.group_prefix}m", 1)
    ] == [b"still"]
    await _refused(
        _consume(as_agency(police), catalog.agency_alerts(POLICE).name, f"{police.group_prefix}m"),
        TopicAuthorizationFailedError,
    )
    # A second round finds nothing to change.
    assert await granted.access.sync(_register(tmp_path, change), NOW) == []


async def test_sync_finishes_a_revocation_that_left_a_login_without_rules(granted: Granted, tmp_path: Path) -> None:
    # A revocation that stopped after removing the rules (the broker went away, say) leaves the login behind.
    police = granted.logins[POLICE]
    username = agency_username(granted.kafka.catalog, POLICE)
    async with admin_session(granted.kafka) as client:
        await delete_acls(client, [AclFilter(principal=user(username))])
        assert username in await scram_users(client)

    changes = await granted.access.sync(_register(tmp_path, lambda document: document), NOW)

    assert changes == [f"{POLICE}: access revoked (a login left without rules)"]
    async with admin_session(granted.kafka) as client:
        assert username not in await scram_users(client)
    await _refused(
        _consume(as_agency(police), granted.kafka.catalog.agency_events(POLICE).name, f"{police.group_prefix}m"),
        KafkaError,
    )
    # Granting again works as before, and a second round finds nothing to change.
    assert (await granted.grant(POLICE)).username == username
    assert await granted.access.sync(_register(tmp_path, lambda document: document), NOW) == []


async def test_a_grant_made_while_the_keeper_looks_is_not_taken_for_an_unfinished_revocation(
    granted: Granted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newcomer = "desa-lajing"
    injected = False

    async def grant_once() -> None:
        # The operator grants the newcomer between the keeper's two looks (logins, rules), whichever comes first.
        nonlocal injected
        if not injected:
            injected = True
            await granted.grant(newcomer)

    async def users(client: Any) -> list[str]:
        found = await scram_users(client)
        await grant_once()
        return found

    async def rules(client: Any, acl_filter: AclFilter) -> list[AclBinding]:
        found = await describe_acls(client, acl_filter)
        if acl_filter == AclFilter():  # the keeper's look at every rule, not the grant's own
            await grant_once()
        return found

    monkeypatch.setattr("timpora.common.register.kafka_access.scram_users", users)
    monkeypatch.setattr("timpora.common.register.kafka_access.describe_acls", rules)
    changes = await granted.access.sync(_register(tmp_path, lambda document: document), NOW)

    assert injected
    assert changes == []
    login = granted.logins[newcomer]
    topic = granted.kafka.catalog.agency_events(newcomer).name
    await _publish(granted.kafka, topic, b"welcome")
    assert [r.value for r in await _read(as_agency(login), [topic], f"{login.group_prefix}m", 1)] == [b"welcome"]


async def test_the_keeper_beside_the_services_takes_access_from_a_member_as_it_leaves_the_register(
    granted: Granted, tmp_path: Path, tool_environment: dict[str, str], audit_url: str
) -> None:
    live = tmp_path / "live-register.yaml"
    live.write_text(yaml.safe_dump(registers.shipped()), encoding="utf-8")
    environment = tool_environment | {"TIMPORA_REGISTER_FILE": str(live)}
    keeper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timpora.common.register.kafka_access", "kafka", "watch",
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert keeper.stdout is not None
        assert keeper.stderr is not None
        started = await asyncio.wait_for(keeper.stderr.readline(), timeout=60)
        document = registers.shipped()
        document["members"] = [entry for entry in document["members"] if entry["id"] != POLICE]
        live.write_text(yaml.safe_dump(document), encoding="utf-8")
        said = await asyncio.wait_for(keeper.stdout.readline(), timeout=60)
    finally:
        keeper.terminate()
        await keeper.wait()

    assert started.decode().strip() == f"watching {live}; agencies' access follows it every 2 s"
    assert said.decode().strip() == f"{POLICE}: access revoked (not in the register)"
    (entry,) = await _audit(audit_url, granted.kafka, POLICE)
    assert (entry.action, entry.actor_kind, entry.actor, entry.os_user) == (
        "kafka.revoke",
        "system",
        "the access keeper",
        getpass.getuser(),
    )
    assert entry.new_value == {
        "principal": agency_username(granted.kafka.catalog, POLICE),
        "topics": [],
        "reason": "not in the register",
    }
    police = granted.logins[POLICE]
    await _refused(
        _consume(as_agency(police), granted.kafka.catalog.agency_events(POLICE).name, f"{police.group_prefix}m"),
        KafkaError,
    )


def _end_agreement(document: dict[str, Any], agency_id: str) -> dict[str, Any]:
    agreement = registers.member(document, agency_id)["agreement"]
    agreement["valid_from"] = "2020-01-01"
    agreement["valid_to"] = "2020-12-31"
    return document


def _register(tmp_path: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Register:
    path = tmp_path / f"register-{len(list(tmp_path.glob('register-*')))}.yaml"
    path.write_text(yaml.safe_dump(change(registers.shipped())), encoding="utf-8")
    return load(path)


# --- the tool, as operators run it: the admin audit log, and what it says when it cannot work ----------------


@pytest.fixture
def audit_url(database_urls: dict[str, str]) -> str:
    """The test database, as the alerts role reaches it: that role may append to the admin audit log."""
    return database_urls["alerts"]


@pytest.fixture
def tool_environment(granted: Granted, audit_url: str, tmp_path: Path) -> dict[str, str]:
    """``timpora-agencies``'s environment: the operator's connection in the test's namespace, its register, the
    test database's audit log."""
    return os.environ | {
        "TIMPORA_KAFKA_NAMESPACE": granted.kafka.namespace,
        "TIMPORA_REGISTER_FILE": str(tmp_path / "register.yaml"),
        "TIMPORA_AUDIT_DATABASE_URL": audit_url,
    }


async def _tool(environment: dict[str, str], *args: str) -> Ran:
    """``timpora-agencies ARGS``, a real process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timpora.common.register.kafka_access", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return Ran(process.returncode or 0, out.decode(), err.decode())


async def _audit(url: str, kafka: KafkaSettings, agency_id: str) -> list[audit.AuditEntry]:
    """The tool's entries about ``agency_id``'s principal in this test's namespace, oldest first."""
    principal = agency_username(kafka.catalog, agency_id)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            entries = await audit.read(connection, service="agencies", target=agency_id, limit=1000)
    finally:
        await engine.dispose()
    return sorted(
        (
            entry
            for entry in entries
            if principal in {(entry.old_value or {}).get("principal"), (entry.new_value or {}).get("principal")}
        ),
        key=lambda entry: entry.id,
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_grant_and_a_revocation_by_the_tool_are_in_the_audit_log_with_the_operator_never_the_password(
    granted: Granted, tool_environment: dict[str, str], audit_url: str
) -> None:
    catalog = granted.kafka.catalog
    given = await _tool(tool_environment, "kafka", "grant", POLICE, "--operator", "Ana Operator")
    taken = await _tool(tool_environment, "kafka", "revoke", POLICE, "--operator", "Budi Operator")

    assert given.returncode == 0, given.stderr
    assert taken.returncode == 0, taken.stderr
    (password,) = [line.split("=", 1)[1] for line in given.stdout.splitlines() if line.startswith("KAFKA_PASSWORD=")]
    grant, revoke = await _audit(audit_url, granted.kafka, POLICE)
    principal = agency_username(catalog, POLICE)
    police_topics = [catalog.agency_events(POLICE).name, catalog.agency_alerts(POLICE).name]
    assert (grant.action, grant.actor_kind, grant.actor, grant.os_user) == (
        "kafka.grant",
        "command",
        "Ana Operator",
        getpass.getuser(),
    )
    # The fixture granted it before: this grant is a rotation.
    assert grant.old_value == {"principal": principal, "topics": sorted(police_topics)}
    assert grant.new_value == {
        "principal": principal,
        "topics": police_topics,
        "group_prefix": f"{principal}.",
        "rotation": True,
    }
    assert (revoke.action, revoke.actor_kind, revoke.actor, revoke.os_user) == (
        "kafka.revoke",
        "command",
        "Budi Operator",
        getpass.getuser(),
    )
    assert revoke.new_value == {"principal": principal, "topics": []}
    assert password not in json.dumps([grant.model_dump(mode="json"), revoke.model_dump(mode="json")])


async def test_a_grant_without_an_operator_is_refused(
    granted: Granted, tool_environment: dict[str, str], audit_url: str
) -> None:
    refused = await _tool(tool_environment, "kafka", "grant", POLICE)

    assert refused.returncode == 2
    assert "the following arguments are required: --operator" in refused.stderr
    assert refused.stdout == ""
    assert await _audit(audit_url, granted.kafka, POLICE) == []


async def test_a_grant_that_cannot_be_recorded_is_refused_before_anything_changes(
    granted: Granted, tool_environment: dict[str, str], audit_url: str
) -> None:
    unreachable = f"postgresql+asyncpg://timpora_alerts:not-a-real-one-7@127.0.0.1:{_closed_port()}/timpora"

    refused = await _tool(tool_environment | {"TIMPORA_AUDIT_DATABASE_URL": unreachable}, "kafka", "grant", POLICE,
                          "--operator", "Ana Operator")  # fmt: skip

    assert refused.returncode == 1
    assert refused.stdout == ""  # no password
    (line,) = refused.stderr.splitlines()
    assert line.startswith("timpora-agencies: cannot write the admin audit log (")
    assert line.endswith("check TIMPORA_AUDIT_DATABASE_URL: nothing was granted")
    assert await _audit(audit_url, granted.kafka, POLICE) == []
    # The login the agency had still works: its password was not rotated, its rules not touched.
    police, topic = granted.logins[POLICE], granted.kafka.catalog.agency_events(POLICE).name
    await _publish(granted.kafka, topic, b"unchanged")
    assert [r.value for r in await _read(as_agency(police), [topic], f"{police.group_prefix}m", 1)] == [b"unchanged"]


_UNREACHABLE = [
    pytest.param(lambda _env: {"TIMPORA_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}"}, id="a closed port"),
    pytest.param(lambda env: {"TIMPORA_KAFKA_PASSWORD": env["TIMPORA_KAFKA_PASSWORD"] + "x"}, id="a wrong password"),
]


@pytest.mark.parametrize("unreachable", _UNREACHABLE)
@pytest.mark.parametrize(
    "action", [["grant", POLICE, "--operator", "Ana"], ["revoke", POLICE, "--operator", "Ana"], ["sync"]], ids=str
)
async def test_without_kafka_every_action_says_in_one_line_where_it_tried_and_what_to_do(
    granted: Granted,
    tool_environment: dict[str, str],
    unreachable: Callable[[dict[str, str]], dict[str, str]],
    action: list[str],
) -> None:
    environment = tool_environment | unreachable(tool_environment)

    ran = await _tool(environment, "kafka", *action)

    assert ran.returncode == 1
    assert ran.stdout == ""
    (line,) = ran.stderr.splitlines()
    address = environment["TIMPORA_KAFKA_BOOTSTRAP_SERVERS"]
    assert re.fullmatch(
        rf"timpora-agencies: cannot reach Kafka at {re.escape(address)} as admin \(\w+\): "
        r'run eval "\$\(deploy/local/stack env\)" first, or check TIMPORA_KAFKA_\*',
        line,
    ), line
    assert granted.logins[POLICE]  # the fixture's grants stand


async def test_the_keeper_says_once_that_kafka_does_not_answer_naming_where(
    granted: Granted, tool_environment: dict[str, str]
) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    keeper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timpora.common.register.kafka_access", "kafka", "watch",
        env=tool_environment | {"TIMPORA_KAFKA_BOOTSTRAP_SERVERS": address},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(7)  # three rounds and more
    keeper.terminate()
    _out, err = await keeper.communicate()

    lines = err.decode().splitlines()
    assert lines[0] == f"watching {tool_environment['TIMPORA_REGISTER_FILE']}; agencies' access follows it every 2 s"
    assert len(lines) == 2, lines  # the trouble once, not every round
    assert lines[1].startswith(f"agency access not synced: cannot reach Kafka at {address} as admin (")
    assert "Traceback" not in err.decode()


async def test_the_keeper_stops_at_once_on_a_register_it_cannot_load(
    granted: Granted, tool_environment: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken-register.yaml"
    broken.write_text("members: [\n", encoding="utf-8")

    ran = await _tool(tool_environment | {"TIMPORA_REGISTER_FILE": str(broken)}, "kafka", "watch")

    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert line.startswith(f"timpora-agencies: {broken}")


async def test_the_tool_says_what_is_missing_and_which_register_it_read(
    granted: Granted, tool_environment: dict[str, str]
) -> None:
    stranger = await _tool(tool_environment, "kafka", "grant", "polres-madiun", "--operator", "Ana")
    unlisted = await _tool(
        tool_environment | {"TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS": ""}, "kafka", "grant", POLICE, "--operator", "Ana"
    )

    register_file = tool_environment["TIMPORA_REGISTER_FILE"]
    assert (stranger.returncode, stranger.stderr.splitlines()) == (
        1,
        [f"timpora-agencies: polres-madiun is not a member in the register {register_file}"],
    )
    assert unlisted.returncode == 1
    (line,) = unlisted.stderr.splitlines()
    assert "set TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS" in line
    assert "TIMPORA_KAFKA_CA_FILE" in line


@pytest.mark.parametrize(
    ("action", "says", "reads"),
    [
        ("grant", "Creates or rotates", ["TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS", "TIMPORA_KAFKA_CA_FILE"]),
        ("revoke", "Removes the agency's ACLs", []),
        ("sync", "One round of what watch does", ["TIMPORA_REGISTER_FILE"]),
        ("watch", "Runs beside the services", ["TIMPORA_REGISTER_FILE"]),
    ],
)
def test_each_action_says_what_it_does_and_the_variables_it_reads(
    action: str, says: str, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["kafka", action, "--help"])

    assert stopped.value.code == 0
    usage_and_description, _, options_and_epilog = " ".join(capsys.readouterr().out.split()).partition("options:")
    assert says in usage_and_description
    for variable in [
        "TIMPORA_KAFKA_BOOTSTRAP_SERVERS",
        "TIMPORA_KAFKA_USERNAME",
        "TIMPORA_KAFKA_PASSWORD",
        "TIMPORA_AUDIT_DATABASE_URL",
        "TIMPORA_ALERTS_DATABASE__URL",
        *reads,
    ]:
        assert variable in options_and_epilog, variable


# --- the services ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forbidden:
    service: ServiceName
    what: str
    attempt: Callable[[KafkaSettings, KafkaSettings], Callable[[], Awaitable[object]]]
    errors: tuple[type[Exception], ...]


_WRITE_REFUSED = (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)
_GROUP_REFUSED = (GroupAuthorizationFailedError,)
_TOPIC_REFUSED = (TopicAuthorizationFailedError,)


def _read_in(
    topic: Callable[[Any], str], group: str
) -> Callable[[KafkaSettings, KafkaSettings], Callable[[], Awaitable[object]]]:
    return lambda me, ns: _consume(me, topic(ns.catalog), f"{ns.namespace}-{group}")


def _write(topic: Callable[[Any], str]) -> Callable[[KafkaSettings, KafkaSettings], Callable[[], Awaitable[object]]]:
    return lambda me, ns: _produce(me, topic(ns.catalog), idempotent=False)


def _registry(catalog: Any) -> str:
    return str(catalog.registry_events.name)


FORBIDDEN = [
    Forbidden(
        "registry", "read the registry topic", _read_in(_registry, "alerts-routing"), (*_TOPIC_REFUSED, *_GROUP_REFUSED)
    ),
    Forbidden("registry", "write an agency's topic", _write(lambda c: c.agency_events(POLICE).name), _WRITE_REFUSED),
    Forbidden("alerts", "write the registry topic", _write(_registry), _WRITE_REFUSED),
    Forbidden(
        "alerts",
        "read an agency's events topic",
        _read_in(lambda c: c.agency_events(POLICE).name, "alerts-routing"),
        _TOPIC_REFUSED,
    ),
    Forbidden("alerts", "join the sharing service's group", _read_in(_registry, "sharing-projections"), _GROUP_REFUSED),
    Forbidden("sharing", "write the registry topic", _write(_registry), _WRITE_REFUSED),
    Forbidden(
        "sharing", "write an agency's alerts topic", _write(lambda c: c.agency_alerts(POLICE).name), _WRITE_REFUSED
    ),
    Forbidden(
        "sharing",
        "read the alerts dead letters",
        _read_in(lambda c: c.alerts_dead_letters.name, "sharing-projections"),
        _TOPIC_REFUSED,
    ),
]


@pytest.mark.parametrize("forbidden", FORBIDDEN, ids=lambda f: f"{f.service} may not {f.what}")
async def test_a_service_can_do_nothing_beyond_its_job(granted: Granted, forbidden: Forbidden) -> None:
    await ensure_topics(granted.kafka, [granted.kafka.catalog.agency_alerts(POLICE)])
    me = (await service_principals(granted.kafka))[forbidden.service]

    await _refused(forbidden.attempt(me, granted.kafka), *forbidden.errors)


@pytest.mark.parametrize("service", ["registry", "alerts", "sharing"])
async def test_no_service_can_change_rules_or_logins(granted: Granted, service: ServiceName) -> None:
    me = (await service_principals(granted.kafka))[service]
    async with admin_session(me) as client:
        with pytest.raises(KafkaSecurityError, match="ClusterAuthorizationFailedError"):
            await create_acls(
                client,
                [AclBinding(f"User:{me.sasl_username}", ResourceType.TOPIC, "x", PatternType.PREFIXED, Operation.ALL)],
            )
        with pytest.raises(KafkaSecurityError, match="ClusterAuthorizationFailedError"):
            await set_scram_password(client, granted.logins[POLICE].username, "a-password-of-its-choosing")


# --- the README's example, as written (it moved to the agencies' page, docs/agencies.md) --------------------------


def _readme_block(language: str, containing: str) -> str:
    text = (REPO / "docs" / "agencies.md").read_text(encoding="utf-8")
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    (block,) = [block for block in blocks if containing in block]
    return block


@dataclass(frozen=True)
class GrantLine:
    """The README's grant command: what it runs, the file it writes, and whether it makes it private (umask)."""

    argv: list[str]
    target: str
    private: bool


def grant_line(block: str) -> GrantLine:
    """The block's last command line (``… kafka grant AGENCY … > FILE``, a comment after it, perhaps wrapped in
    ``(umask 077; …)``), split as the shell would split it."""
    lines = [line for line in block.strip().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    lexer = shlex.shlex(lines[-1], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    private = len(tokens) > 4 and tokens[:2] == ["(", "umask"] and tokens[2].lstrip("0") == "77" and tokens[3] == ";"
    if private and tokens[-1] == ")":
        tokens = tokens[4:-1]
    if any(token in {"(", ")", ";", "&&", "|"} for token in tokens) or tokens.count(">") != 1:
        raise AssertionError(f"a grant line this test does not understand: {lines[-1]}")
    at = tokens.index(">")
    if at + 2 != len(tokens):
        raise AssertionError(f"the README's grant line writes no one file: {lines[-1]}")
    return GrantLine(tokens[:at], tokens[at + 1], private)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (
            ".venv/bin/timpora-agencies kafka grant polres-bangkalan > polres.env # hand this file to the agency, once",
            GrantLine(
                [".venv/bin/timpora-agencies", "kafka", "grant", "polres-bangkalan"], "polres.env", private=False
            ),
        ),
        (
            (
                '(umask 077; .venv/bin/timpora-agencies kafka grant polres-bangkalan --operator "Ana Operator" '
                "> .stack/polres.env)   # hand this file to the agency, once"
            ),
            GrantLine(
                [".venv/bin/timpora-agencies", "kafka", "grant", "polres-bangkalan", "--operator", "Ana Operator"],
                ".stack/polres.env",
                private=True,
            ),
        ),
    ],
    ids=["plain", "in a umask 077 subshell"],
)
def test_the_readmes_grant_line_is_read_in_either_form(line: str, parsed: GrantLine) -> None:
    block = 'eval "$(deploy/local/stack env)"   # the connection of the operator\n' + line + "\n"
    assert grant_line(block) == parsed


@pytest.fixture
def readme_grant() -> GrantLine:
    # The local stack's block (the Docker section's runs it in its container).
    return grant_line(_readme_block("sh", "bin/timpora-agencies kafka grant"))


@pytest.fixture
def agency_environment(granted: Granted, tmp_path: Path, audit_url: str, readme_grant: GrantLine) -> dict[str, str]:
    """The environment the README's agency works in: its env file from ``timpora-agencies kafka grant`` run as
    the README says, in the test's namespace, written where the README writes it (relative to the agency's
    directory, the test's own); and ``kcat`` able to log in to Kafka 4 (deploy/local/kcat)."""
    if shutil.which("kcat") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kcat is not installed: deploy/local/stack up installs it (apt-get install kcat)")
        pytest.skip("kcat is not installed")
    grant = readme_grant.argv
    environment = os.environ | {
        "TIMPORA_KAFKA_NAMESPACE": granted.kafka.namespace,
        "TIMPORA_AUDIT_DATABASE_URL": audit_url,
    }
    printed = subprocess.run(  # noqa: S603 - the README's own command
        [str(REPO / grant[0]), *grant[1:]], capture_output=True, text=True, check=True, env=environment, cwd=REPO
    ).stdout
    env_file = tmp_path / readme_grant.target
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(printed, encoding="utf-8")
    if readme_grant.private:
        env_file.chmod(0o600)
    assert [line.split("=", 1)[0] for line in printed.splitlines()] == [
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_USERNAME",
        "KAFKA_PASSWORD",
        "KAFKA_CA_FILE",
    ]
    shim = tmp_path / "bin" / "kcat"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{REPO / "deploy" / "local" / "kcat"}" "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return os.environ | {"PATH": f"{shim.parent}:{os.environ['PATH']}"}


def _in_namespace(command: str, namespace: str) -> str:
    # The README speaks of the production namespace; the test has its own.
    return command.replace("timpora.sharing.", f"{namespace}.sharing.").replace(
        "timpora.registry.", f"{namespace}.registry."
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _bash(command: str, environment: dict[str, str], cwd: Path) -> Ran:
    process = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, env=environment, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)  # kcat too, which holds the pipes
        out, err = await process.communicate()
        raise AssertionError(f"still running after 90 s: {command}\n{out.decode()}\n{err.decode()}") from None
    return Ran(process.returncode or 0, out.decode(), err.decode())


async def test_the_readmes_kcat_example_reads_the_agencys_topic_and_is_refused_the_registry(
    granted: Granted, agency_environment: dict[str, str], tmp_path: Path
) -> None:
    topic = granted.kafka.catalog.agency_events(POLICE).name
    await _publish(granted.kafka, topic, b'{"shared": true}')
    command = _in_namespace(_readme_block("sh", "kcat -b"), granted.kafka.namespace)

    read = await _bash(command, agency_environment, tmp_path)
    refused = await _bash(
        command.replace(topic, granted.kafka.catalog.registry_events.name), agency_environment, tmp_path
    )

    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == ['k {"shared": true}']
    assert refused.returncode != 0
    assert "Topic authorization failed" in refused.stderr


async def test_the_readmes_aiokafka_example_reads_the_agencys_topic(
    granted: Granted, agency_environment: dict[str, str], tmp_path: Path, readme_grant: GrantLine
) -> None:
    topic = granted.kafka.catalog.agency_events(POLICE).name
    await _publish(granted.kafka, topic, b'{"shared": true}')
    program = _in_namespace(_readme_block("python", "AIOKafkaConsumer"), granted.kafka.namespace)
    environment = (
        agency_environment
        | {
            line.split("=", 1)[0]: line.split("=", 1)[1]
            for line in (tmp_path / readme_grant.target).read_text(encoding="utf-8").splitlines()
        }
        | {"PYTHONUNBUFFERED": "1"}
    )

    # It reads forever, as an agency's consumer does: it is stopped once it printed the record.
    process = await asyncio.create_subprocess_exec(
        str(REPO / ".venv" / "bin" / "python"), "-c", program, env=environment, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    finally:
        process.kill()
        await process.wait()

    assert line.decode().strip() == "b'k' b'{\"shared\": true}'"
