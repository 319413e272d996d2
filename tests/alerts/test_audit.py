"""Every operator action in the alerts service is in the admin audit log, attributed, with its old and new values
and no secret; operators read it at ``GET /v1/admin/audit``, page by page."""

from __future__ import annotations

import getpass
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from tests.alerts.conftest import AlertsUnderTest
from timpora.alerts import commands
from timpora.alerts.models import agencies
from timpora.common.register.members import AgencyKind

POLICE = "polres-bangkalan"


async def _entries(alerts: AlertsUnderTest, **params: Any) -> list[dict[str, Any]]:
    response = await alerts.as_operator("GET", "/v1/admin/audit", params=params)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def test_enabling_a_webhook_and_a_replay_are_recorded_with_the_operator_and_the_values(
    service: AlertsUnderTest,
) -> None:
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(
            update(agencies)
            .where(agencies.c.id == POLICE)
            .values(webhook_disabled_at=service.clock.now(), webhook_disabled_reason="HTTP 410")
        )
    enabled = await service.as_operator("POST", f"/v1/admin/agencies/{POLICE}/webhook/enable")
    since = service.clock.now() - timedelta(hours=1)
    replayed = await service.as_operator(
        "POST",
        f"/v1/admin/agencies/{POLICE}/replay",
        json={"since": since.isoformat(), "until": service.clock.now().isoformat(), "channel": "webhook"},
    )
    assert (enabled.status_code, replayed.status_code) == (200, 200)

    replay, enable = await _entries(service, target=POLICE, service="alerts", limit=2)
    assert enable["action"] == "agency.webhook.enable"
    assert (enable["actor"], enable["actor_kind"]) == ("test-operator", "operator-key")
    assert enable["key_id"] is not None
    assert enable["old_value"]["webhook_disabled_reason"] == "HTTP 410"
    assert enable["old_value"]["webhook_disabled_at"] is not None
    assert enable["new_value"] == dict.fromkeys(
        ("webhook_disabled_at", "webhook_disabled_reason", "webhook_failing_since")
    )
    assert replay["action"] == "agency.replay"
    assert replay["actor"] == "test-operator"
    assert replay["new_value"]["channel"] == "webhook"
    assert replay["new_value"]["requeued"] == replayed.json()["requeued"]


async def test_a_rule_reload_is_recorded_with_the_rules_before_and_after(service: AlertsUnderTest) -> None:
    text = service.rules_file.read_text(encoding="utf-8")
    first_rule = service.alerting.rules.rules[0].id
    service.rules_file.write_text(text.replace(f"id: {first_rule}\n", f"id: {first_rule}-renamed\n", 1))

    response = await service.as_operator("POST", "/v1/admin/rules/reload")
    assert response.status_code == 200, response.text

    (entry,) = await _entries(service, action="rules.reload", limit=1)
    assert entry["actor"] == "test-operator"
    assert entry["target"] == str(service.rules_file)
    assert first_rule in [rule["id"] for rule in entry["old_value"]]
    assert f"{first_rule}-renamed" in [rule["id"] for rule in entry["new_value"]]


async def test_a_register_change_is_recorded_old_and_new_with_the_webhooks_tokens_masked(
    service: AlertsUnderTest,
) -> None:
    token = "s3cr3t-t0ken-in-the-query"  # noqa: S105 - what must not be shown
    before = (await service.as_operator("GET", "/v1/admin/agencies")).json()
    (police,) = [item for item in before if item["agency"]["id"] == POLICE]
    old_url = police["agency"]["channels"]["webhook"]["url"]

    def change(document: dict[str, Any]) -> None:
        for member in document["members"]:
            if member["id"] == POLICE:
                member["channels"]["webhook"]["url"] = old_url.replace("://", "://agency:pw0rd@") + f"?token={token}"
                member["digest_at"] = "09:30"

    newest_before = max((entry["id"] for entry in await _entries(service, limit=1)), default=0)
    await service.change_register(change)

    # Only what changed is recorded: one member, once.
    changed = [entry for entry in await _entries(service, limit=50) if entry["id"] > newest_before]
    assert [(entry["action"], entry["target"]) for entry in changed] == [("register.member.change", POLICE)]

    response = await service.as_operator("GET", "/v1/admin/audit", params={"target": POLICE})
    assert token not in response.text
    assert "pw0rd" not in response.text
    entry = next(item for item in response.json()["entries"] if item["action"] == "register.member.change")
    assert entry["actor_kind"] == "register"
    assert str(service.register_file) in entry["actor"]
    assert entry["old_value"]["digest_at"] != "09:30:00"
    assert entry["new_value"]["digest_at"] == "09:30:00"
    assert entry["new_value"]["kind"] == AgencyKind.POLICE
    masked = entry["new_value"]["channels"]["webhook"]
    assert masked["url"].endswith("?token=***")
    assert "://***@127.0.0.1:" in masked["url"]
    assert masked["secret_env"]  # which variable holds the secret is shown; the secret never is
    assert "secret" not in masked


async def test_issuing_an_agency_key_by_command_is_recorded_with_the_operator_and_the_os_user(
    service: AlertsUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await commands.agency_keys(service.runtime.settings, ["issue", POLICE, "--operator", "kasi-inteldakim"])
    key = capsys.readouterr().out.strip()
    assert code == 0

    response = await service.as_operator("GET", "/v1/admin/audit", params={"action": "agency_keys.issue"})
    (entry, *_) = response.json()["entries"]
    assert (entry["actor"], entry["actor_kind"], entry["os_user"]) == ("kasi-inteldakim", "command", getpass.getuser())
    assert entry["target"] == POLICE
    assert entry["new_value"]["agency_id"] == POLICE
    assert key not in response.text

    key_id = entry["new_value"]["key_id"]
    revoked = await commands.agency_keys(service.runtime.settings, ["revoke", key_id, "--operator", "kasi-inteldakim"])
    unattributed = await _exit_code(commands.agency_keys(service.runtime.settings, ["revoke", key_id]))
    assert (revoked, unattributed) == (0, 2)
    (revocation, *_) = await _entries(service, action="agency_keys.revoke")
    assert (revocation["target"], revocation["actor"]) == (POLICE, "kasi-inteldakim")
    assert (revocation["old_value"]["revoked"], revocation["new_value"]["revoked"]) == (False, True)
    assert revocation["new_value"]["key_id"] == key_id


async def _exit_code(command: Coroutine[Any, Any, int]) -> int:
    """A command's exit status, also when argparse refuses its arguments (it exits)."""
    try:
        return await command
    except SystemExit as exit_:
        return int(exit_.code or 0)


async def test_the_log_is_read_page_by_page_by_operators_only(service: AlertsUnderTest) -> None:
    for _ in range(3):
        assert (await service.as_operator("POST", "/v1/admin/rules/reload")).status_code == 200
    first = await service.as_operator("GET", "/v1/admin/audit", params={"limit": 2})
    second = await service.as_operator("GET", "/v1/admin/audit", params={"limit": 2, "before": first.json()["next"]})
    newest = await _entries(service, limit=4)

    assert [entry["id"] for entry in first.json()["entries"] + second.json()["entries"]] == [
        entry["id"] for entry in newest
    ]
    assert (await service.client.get("/v1/admin/audit")).status_code == 401
    assert (await service.as_agency(POLICE, "GET", "/v1/admin/audit")).status_code == 401


async def test_the_directory_is_read_whole_again_only_when_an_agencys_row_changed(
    service: AlertsUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A country's directory holds some 10,000 members: read and parsed every second it would take a core. It is
    read again only when a row it is made of changed (here: a webhook disabled), and then at the next look."""
    from timpora.alerts import agencies as directory_module  # noqa: PLC0415

    cache = service.runtime.state["alerting"].directory_cache  # type: ignore[attr-defined]
    reads = []
    load = directory_module.load

    async def counted(session: Any) -> Any:
        reads.append(1)
        return await load(session)

    monkeypatch.setattr(directory_module, "load", counted)

    async def look() -> Any:
        cache.loaded_at = 0.0  # as if a second had passed
        async with service.runtime.sessions() as session:
            return await cache.get(session)

    await look()  # takes the register in, if this service has not yet
    reads.clear()
    # The database is shared with every test's leftovers, which this service's own workers go on delivering (and
    # may disable a failing webhook of meanwhile): the agencies' rows are held still while nothing is to change.
    # SHARE mode lets the looks read and makes any writer wait until the lock is let go.
    async with service.runtime.sessions() as holder, holder.begin():
        await holder.execute(text("LOCK TABLE agencies IN SHARE MODE"))
        first = await look()
        unchanged = [await look() for _ in range(3)]
        reads_while_still = len(reads)
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(
            update(agencies)
            .where(agencies.c.id == POLICE)
            .values(webhook_disabled_at=service.clock.now(), webhook_disabled_reason="HTTP 410")
        )
    changed = await look()

    assert all(directory is first for directory in unchanged)
    assert POLICE not in first.disabled_webhooks
    assert POLICE in changed.disabled_webhooks
    assert reads_while_still <= 1  # the first look, if a row changed since the warm-up look
    assert len(reads) == reads_while_still + 1  # and once after the change
