"""docker-compose's `preflight` (python -m timpora.common.preflight), as a real process: the passwords of an
env file are refused before PostgreSQL, the certificates or the broker's storage are made with them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHY = "the password is a placeholder from an example, known to anyone who read it: set one of your own"


def _env_example() -> dict[str, str]:
    """The variables deploy/.env.example sets, as an operator who copied it and changed nothing has them."""
    lines = (REPO / "deploy" / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def _preflight(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timpora.common.preflight"],
        env={name: value for name, value in os.environ.items() if not name.startswith("TIMPORA_")} | environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _real(example: dict[str, str]) -> dict[str, str]:
    return {name: f"a7f3c9e1{index:02d}b5d2" for index, name in enumerate(example)}


def test_the_env_example_as_shipped_is_refused_one_line_per_variable_naming_it_never_its_value() -> None:
    example = _env_example()
    passwords = sorted(name for name in example if name.endswith("PASSWORD"))

    done = _preflight(example)

    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"preflight: {name} refused: {WHY}" for name in passwords]
    assert "TIMPORA_KAFKA_ADMIN_PASSWORD" in passwords
    for value in example.values():
        assert value not in done.stdout + done.stderr


def test_real_passwords_pass() -> None:
    done = _preflight(_real(_env_example()) | {"TIMPORA_KAFKA_AGENCY_HOST": "kafka.imigrasi.example"})

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"preflight: {len(_env_example())} passwords checked, none a placeholder"]


def test_one_placeholder_among_real_passwords_is_named_alone() -> None:
    done = _preflight(_real(_env_example()) | {"TIMPORA_SHARING_DB_PASSWORD": "changeme"})

    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"preflight: TIMPORA_SHARING_DB_PASSWORD refused: {WHY}"]


@pytest.mark.parametrize(
    "name", ["TIMPORA_KAFKA_ADMIN_PASSWORD", "TIMPORA_KAFKA_TLS_STORE_PASSWORD", "TIMPORA_ALERTS_DB_PASSWORD"]
)
def test_a_password_written_unquoted_into_the_brokers_configuration_or_a_url_holds_safe_characters_only(
    name: str,
) -> None:
    done = _preflight(_real(_env_example()) | {name: "a7f3c9e1@b5d2/x"})

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"preflight: {name} refused: it may hold letters, digits and . _ ~ - only (make one with: openssl rand -hex 24)"
    ]
    assert "a7f3c9e1@b5d2/x" not in done.stderr


def test_no_relay_login_is_an_empty_username_and_password_but_half_a_login_is_refused() -> None:
    real = _real(_env_example())
    none = {"TIMPORA_ALERTS_SMTP_USERNAME": "", "TIMPORA_ALERTS_SMTP_PASSWORD": ""}
    half = {"TIMPORA_ALERTS_SMTP_USERNAME": "alerts", "TIMPORA_ALERTS_SMTP_PASSWORD": ""}
    placeholder = {"TIMPORA_ALERTS_SMTP_USERNAME": "alerts", "TIMPORA_ALERTS_SMTP_PASSWORD": "secret"}

    assert _preflight(real | none).returncode == 0
    assert _preflight(real | half).stderr.splitlines() == [
        "preflight: TIMPORA_ALERTS_SMTP_PASSWORD refused: the password is empty: set one of your own"
    ]
    assert _preflight(real | placeholder).stderr.splitlines() == [
        f"preflight: TIMPORA_ALERTS_SMTP_PASSWORD refused: {WHY}"
    ]


def test_without_any_password_to_check_it_refuses_rather_than_passes() -> None:
    done = _preflight({})

    assert done.returncode == 2
    assert "no TIMPORA_*_PASSWORD variable to check" in done.stderr
