"""The event contract the registry serves, and the operators command."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.registry.conftest import Registry
from tests.support.clock import ManualSeconds
from timpora.common.events import REGISTRY_EVENT_SPECS
from timpora.common.http.auth import KEY_TRUST_S, BearerGate
from timpora.common.settings import DatabaseSettings


async def test_the_asyncapi_document_describes_every_event_on_the_registry_topic(registry: Registry) -> None:
    response = await registry.client.get("/v1/asyncapi.json", headers={"Authorization": ""})

    document = response.json()
    assert response.status_code == 200
    assert document["asyncapi"].startswith("3.")
    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == {
        registry.runtime.settings.kafka.catalog.registry_events.name
    }
    assert set(channels) == {spec.ce_type for spec in REGISTRY_EVENT_SPECS}
    payloads = str(document["components"])
    assert "days_overstayed" in payloads
    assert "collapsed_thresholds" in payloads


async def test_each_event_schema_is_served_and_unknown_names_are_404(registry: Registry) -> None:
    found = await registry.client.get("/v1/schemas/permit.expired.v1.json")
    missing = await registry.client.get("/v1/schemas/permit.teleported.v1.json")

    assert found.json()["$id"] == "urn:timpora:schema:permit.expired:v1"
    assert missing.status_code == 404
    assert "permit.expired.v1.json" in missing.json()["detail"]


def test_operators_are_added_with_a_token_shown_once_and_can_be_disabled(
    registry: Registry, database_settings: dict[str, DatabaseSettings]
) -> None:
    environment = os.environ | {"TIMPORA_REGISTRY_DATABASE__URL": database_settings["registry"].url.get_secret_value()}
    command = [sys.executable, "-m", "timpora.registry.main", "operators"]
    name = f"officer-{os.getpid()}-{id(registry)}"

    def run(*arguments: str, program: str = "operators") -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            [*command[:-1], program, *arguments], env=environment, capture_output=True, text=True, check=False
        )

    unattributed = run("add", name)
    added = run("add", name, "--operator", "kasi-inteldakim")
    disabled = run("disable", name, "--operator", "kasi-inteldakim")
    unknown = run("disable", "nobody", "--operator", "kasi-inteldakim")

    assert unattributed.returncode == 2  # nobody is recorded as having done it: refused
    assert "--operator" in unattributed.stderr
    token = added.stdout.strip()
    assert token.startswith("tmp_")
    assert len(token) > 40
    assert token not in added.stderr
    assert disabled.returncode == 0
    assert unknown.returncode == 1
    # Both are in the admin audit log, attributed, and read with the registry's command (it has no admin API).
    read = run("--target", name, program="audit")
    entries = [json.loads(line) for line in read.stdout.splitlines()]
    assert [(entry["action"], entry["actor"], entry["actor_kind"]) for entry in entries] == [
        ("operators.disable", "kasi-inteldakim", "command"),
        ("operators.add", "kasi-inteldakim", "command"),
    ]
    assert entries[0]["os_user"] == getpass.getuser()
    assert (entries[0]["old_value"], entries[0]["new_value"]) == (
        {"name": name, "active": True},
        {"name": name, "active": False},
    )
    assert token not in read.stdout


async def test_a_disabled_operator_is_refused_once_the_trust_window_is_over(
    registry: Registry, database_settings: dict[str, DatabaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from timpora.registry.operators import add_operator, disable_operator  # noqa: PLC0415

    clock = ManualSeconds()
    monkeypatch.setattr(BearerGate, "clock", clock)
    async with registry.sessions() as session, session.begin():
        token = await add_operator(session, "temporary-officer-" + registry.token[-6:])
    allowed = await registry.client.get("/v1/foreigners", headers={"Authorization": f"Bearer {token}"})
    async with registry.sessions() as session, session.begin():
        await disable_operator(session, "temporary-officer-" + registry.token[-6:])
    clock.advance(KEY_TRUST_S - 0.01)
    trusted = await registry.client.get("/v1/foreigners", headers={"Authorization": f"Bearer {token}"})
    clock.advance(0.01)
    refused = await registry.client.get("/v1/foreigners", headers={"Authorization": f"Bearer {token}"})

    assert allowed.status_code == 200
    assert trusted.status_code == 200  # looked up less than KEY_TRUST_S ago: no query a request
    assert refused.status_code == 401


async def test_concurrent_requests_with_one_token_share_one_lookup(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timpora.registry.api import deps  # noqa: PLC0415
    from timpora.registry.operators import add_operator  # noqa: PLC0415

    clock = ManualSeconds()
    monkeypatch.setattr(BearerGate, "clock", clock)
    lookups: list[str] = []
    gate = deps._operators
    authenticate = gate.lookup

    async def counted(session: AsyncSession, token: str) -> object:
        lookups.append(token)
        return await authenticate(session, token)

    monkeypatch.setattr(gate, "lookup", counted)
    async with registry.sessions() as session, session.begin():
        token = await add_operator(session, "busy-officer-" + registry.token[-6:])
    headers = {"Authorization": f"Bearer {token}"}

    first = await asyncio.gather(*(registry.client.get("/v1/foreigners", headers=headers) for _ in range(16)))
    clock.advance(KEY_TRUST_S)  # trust over: looked up again, once for all sixteen
    second = await asyncio.gather(*(registry.client.get("/v1/foreigners", headers=headers) for _ in range(16)))

    assert [answer.status_code for answer in first + second] == [200] * 32
    assert lookups == [token, token]
