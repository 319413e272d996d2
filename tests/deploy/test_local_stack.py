"""The local stack script: idempotent, and clear when a prerequisite is missing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.stack import REPO, Stack

STACK = REPO / "deploy" / "local" / "stack"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STACK), *args], capture_output=True, text=True, check=False, env=env, timeout=300)  # noqa: S603


def test_starting_a_running_stack_again_reuses_it(stack: Stack) -> None:
    if _run("status").returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the tests under deploy/local/stack, which is not running")
        pytest.skip(f"the stack in use is not the local one ({stack.source})")

    again = _run("up")

    assert again.returncode == 0, again.stderr
    assert "Kafka already running" in again.stderr
    assert "PostgreSQL already running" in again.stderr
    assert _run("status").returncode == 0


def test_an_old_java_is_refused_with_what_to_install(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    java = fake_bin / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n", encoding="utf-8")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    env = os.environ | {"PATH": f"{fake_bin}:{os.environ['PATH']}", "TIMPORA_STACK_DIR": str(tmp_path / "stack")}

    result = _run("up", env=env)

    assert result.returncode == 1
    assert "Kafka 4.x needs Java 17 or newer; found '11.0.2'" in result.stderr
    assert "apt-get install openjdk-17-jre-headless" in result.stderr
    assert not (tmp_path / "stack").exists(), "nothing is started or created when a prerequisite is missing"


def test_env_prints_what_the_services_and_tests_read(tmp_path: Path) -> None:
    result = _run("env", env=os.environ | {"TIMPORA_STACK_DIR": str(tmp_path)})

    names = {line.split("=", 1)[0].removeprefix("export ") for line in result.stdout.splitlines()}
    values = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert {
        "TIMPORA_KAFKA_BOOTSTRAP_SERVERS",
        "TIMPORA_KAFKA_SASL_MECHANISM",
        "TIMPORA_KAFKA_USERNAME",
        "TIMPORA_KAFKA_PASSWORD",
        "TIMPORA_KAFKA_AGENCY_BOOTSTRAP_SERVERS",
        "TIMPORA_KAFKA_CA_FILE",
        "TIMPORA_PG_ADMIN_URL",
    } <= names
    passwords = {values["TIMPORA_KAFKA_PASSWORD"]}
    for service in ("REGISTRY", "ALERTS", "SHARING"):
        assert f"TIMPORA_{service}_DATABASE__URL" in names
        assert f"TIMPORA_{service}_KAFKA__BOOTSTRAP_SERVERS" in names
        # Each service logs in to Kafka as itself, with a password of its own.
        assert values[f"TIMPORA_{service}_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert values[f"TIMPORA_{service}_KAFKA__SASL_USERNAME"] == f"timpora-{service.lower()}"
        passwords.add(values[f"TIMPORA_{service}_KAFKA__SASL_PASSWORD"])
    assert len(passwords) == 4
    assert all(len(password) >= 32 for password in passwords)
    # The portal has a database role of its own (with a password of its own) and nothing of Kafka's.
    database_passwords = {
        make_url(values[f"TIMPORA_{service}_DATABASE__URL"]).password
        for service in ("REGISTRY", "ALERTS", "SHARING", "PORTAL")
    }
    assert make_url(values["TIMPORA_PORTAL_DATABASE__URL"]).username == "timpora_portal"
    assert len(database_passwords) == 4
    assert not [name for name in names if name.startswith("TIMPORA_PORTAL_KAFKA")]
    secrets = (tmp_path / "secrets.env").stat()
    assert stat.S_IMODE(secrets.st_mode) == 0o600
