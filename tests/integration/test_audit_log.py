"""The admin audit log against real PostgreSQL: each service's role may append and read, never change or remove;
and nothing secret survives masking."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from timpora.common import audit
from timpora.common.audit import Actor, mask
from timpora.common.db.bootstrap import SERVICES

#: An insert with an id of its choosing: GENERATED ALWAYS refuses it (a row could otherwise jump the order).
_CHOSEN_ID = (
    "INSERT INTO audit.log (id, service, actor_kind, actor, action, target) "
    "VALUES (1, 'alerts', 'command', 'someone', 'test', 'chosen-id')"
)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_appends_and_reads_but_cannot_change_or_remove(
    service: str, database_urls: dict[str, str]
) -> None:
    engine = create_async_engine(database_urls[service], connect_args={"server_settings": {"search_path": service}})
    target = f"append-only-{uuid.uuid4()}"
    try:
        async with engine.begin() as connection:
            await audit.record(
                connection, service=service, actor=Actor.command("tester"), action="test", target=target, new={"a": 1}
            )
        async with engine.connect() as connection:
            (entry,) = await audit.read(connection, target=target)
        assert (entry.actor, entry.new_value) == ("tester", {"a": 1})
        for statement in (
            "UPDATE audit.log SET actor = 'someone else' WHERE target LIKE 'append-only-%'",
            "DELETE FROM audit.log WHERE target LIKE 'append-only-%'",
            "TRUNCATE audit.log",
            "ALTER TABLE audit.log DISABLE TRIGGER log_append_only",
            "DROP TABLE audit.log",
            _CHOSEN_ID,
        ):
            with pytest.raises(DBAPIError):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
        async with engine.connect() as connection:
            (still,) = await audit.read(connection, target=target)
        assert still == entry
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(
            "INSERT INTO audit.log (id, service, actor_kind, actor, action, target) OVERRIDING SYSTEM VALUE "
            "VALUES (5, 'alerts', 'operator-key', 'alice', 'test', 'forged')",
            id="another entry's number",
        ),
        pytest.param(
            "INSERT INTO audit.log (recorded_at, service, actor_kind, actor, action, target) "
            "VALUES ('2025-01-01', 'alerts', 'operator-key', 'alice', 'test', 'forged')",
            id="a date in the past",
        ),
        pytest.param(
            "INSERT INTO audit.log (db_role, service, actor_kind, actor, action, target) "
            "VALUES ('timpora_alerts', 'alerts', 'operator-key', 'alice', 'test', 'forged')",
            id="another role",
        ),
    ],
)
async def test_a_service_cannot_backdate_renumber_or_disguise_an_entry_and_the_database_names_its_role(
    database_urls: dict[str, str], forged: str
) -> None:
    engine = create_async_engine(
        database_urls["registry"], connect_args={"server_settings": {"search_path": "registry"}}
    )
    target = f"role-{uuid.uuid4()}"
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with engine.begin() as connection:
                await connection.execute(text(forged))
        async with engine.begin() as connection:
            await audit.record(connection, service="alerts", actor=Actor.command("x"), action="test", target=target)
            role = await connection.scalar(text("SELECT db_role FROM audit.log WHERE target = :t"), {"t": target})
            writer = await connection.scalar(text("SELECT session_user"))
    finally:
        await engine.dispose()
    # Whatever service an entry claims, the role that wrote it is on it, as the database saw it.
    assert role == writer
    assert writer is not None
    assert writer.endswith("registry")


async def test_even_the_owner_cannot_update_delete_or_truncate_by_mistake(
    database_admin: asyncpg.Connection,
) -> None:
    for statement in ("UPDATE audit.log SET actor = 'x'", "DELETE FROM audit.log", "TRUNCATE audit.log"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await database_admin.execute(statement)


_SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=12, max_size=40)


@given(secret=_SECRET, name=st.sampled_from(["token", "key", "sig", "access_token", "x"]))
def test_no_url_token_or_password_survives_masking(secret: str, name: str) -> None:
    document = {
        "url": f"https://hooks.example/timpora?{name}={secret}&v=1",
        "with_userinfo": f"https://agency:{secret}@hooks.example/timpora",
        "database": f"postgresql+asyncpg://timpora_alerts:{secret}@db:5432/timpora",
        "webhook": {"url": "https://hooks.example/t", "secret": secret, "secret_env": "TIMPORA_WEBHOOK_SECRET_X"},
        "nested": [{"password": secret}, {"api_key": secret}],
        "keys": [f"tak_{secret}", f"tao_{secret}", f"tsk_{secret}", f"tmp_{secret}", f"whsec_{secret}"],
        "in_path": f"https://hooks.slack.example/services/T0001/B0002/{secret}9Zq8",
        "headers": {"X-Api-Key": secret, "apiKey": secret, "clientSecret": secret, "Cookie": secret},
        "passphrase": secret,
        "plural": {"secrets": [secret], "tokens": [secret], "passwords": [secret], "apiKeys": [secret]},
        "private_key_pem": secret,
        "telegram": f"https://api.telegram.example/bot123456:{secret}Zq8/sendMessage",
    }
    masked = mask(document)
    assert secret not in repr(masked)
    assert masked["webhook"]["secret_env"] == "TIMPORA_WEBHOOK_SECRET_X"  # noqa: S105 - a variable's name, kept
    assert masked["url"].startswith("https://hooks.example/timpora?")  # where it points stays readable
    assert masked["with_userinfo"] == "https://***@hooks.example/timpora"
    assert masked["in_path"] == "https://hooks.slack.example/services/T0001/B0002/***"
