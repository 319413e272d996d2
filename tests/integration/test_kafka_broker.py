"""The local stack's broker itself: its admin doors closed to whoever has no login, its secrets the owner's only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack_dir(stack: Stack) -> Path:
    found = Path(os.environ.get("TIMPORA_STACK_DIR") or REPO / ".stack")
    if not stack.locked_down or not (found / "kafka" / "server.properties").is_file():
        message = f"the broker in use ({stack.source}) is not the local stack's"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs on the local stack: {message}")
        pytest.skip(message)
    return found


def _controller() -> str:
    return f"127.0.0.1:{os.environ.get('TIMPORA_STACK_KAFKA_CONTROLLER_PORT', '19093')}"


@pytest.mark.parametrize(
    "login",
    [
        pytest.param({}, id="no login"),
        pytest.param(
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "admin"},
            id="the operator's login (not the controller's)",
        ),
    ],
)
async def test_the_controller_listener_takes_no_request_without_the_brokers_own_login(
    stack_dir: Path, stack: Stack, login: dict[str, Any]
) -> None:
    # KRaft serves admin requests (ACLs, logins, topics) on the controller's listener too: a client there
    # without the broker's own login would otherwise be anonymous, and anonymous was a super user.
    del stack_dir
    if "sasl_plain_username" in login:
        assert stack.kafka.sasl_password is not None
        login = login | {"sasl_plain_password": stack.kafka.sasl_password.get_secret_value()}
    client = AIOKafkaAdminClient(bootstrap_servers=_controller(), request_timeout_ms=5_000, **login)
    with pytest.raises(KafkaConnectionError):
        await client.start()
    await client.close()


def test_the_brokers_config_data_and_keys_are_its_owners_only(stack_dir: Path) -> None:
    private = {
        stack_dir / "secrets.env": 0o600,
        stack_dir / "kafka" / "server.properties": 0o600,
        stack_dir / "kafka": 0o700,
        stack_dir / "kafka" / "data": 0o700,
        stack_dir / "tls": 0o700,
        stack_dir / "tls" / "ca.key": 0o600,
        stack_dir / "tls" / "broker.key": 0o600,
        stack_dir / "tls" / "broker.p12": 0o600,
    }
    for path, mode in private.items():
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    # Nothing under Kafka's folder (its records, its log of formatting) is readable by others.
    assert [p for p in _everything_under(stack_dir / "kafka") if _readable_by_others(p)] == []
    assert stat.S_IMODE((stack_dir / "logs").stat().st_mode) & 0o066 == 0


def _everything_under(folder: Path) -> list[Path]:
    # os.walk, unlike Path.rglob, skips a folder that vanishes between being listed and being read:
    # the broker deletes other tests' topic folders (``...-delete``) while this walks them.
    found: list[Path] = []
    for parent, folders, files in os.walk(folder):
        found.extend(Path(parent) / name for name in (*folders, *files))
    return found


def _readable_by_others(path: Path) -> bool:
    # The broker deletes other tests' topic folders while this walks them: one gone meanwhile leaks nothing.
    try:
        return bool(stat.S_IMODE(path.lstat().st_mode) & 0o077) and not path.is_symlink()
    except FileNotFoundError:
        return False
