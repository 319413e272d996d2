"""deploy/docker-compose.yml cannot run here (no Docker engine), so check what can be checked: it
parses, every service it names exists with a command that exists, and its variables are the ones
the services read."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from timpora.alerts.settings import AlertsSettings
from timpora.common.settings import ServiceSettings
from timpora.registry.settings import RegistrySettings
from timpora.sharing.settings import SharingSettings

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "registry": RegistrySettings,
    "alerts": AlertsSettings,
    "sharing": SharingSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def _console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in [REPO / "libs/common/pyproject.toml", *REPO.glob("services/*/pyproject.toml")]:
        scripts |= tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("scripts", {})
    return scripts


def test_it_runs_kafka_postgres_the_bootstrap_and_the_three_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "postgres", "db-bootstrap", "mail", *SETTINGS}
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")


@pytest.mark.parametrize("service", list(SETTINGS))
def test_each_service_runs_its_own_console_script_after_its_dependencies_are_healthy(
    compose: dict[str, Any], service: str
) -> None:
    definition = compose["services"][service]
    command = definition["command"]

    assert command == [f"timpora-{service}", "serve"]
    assert command[0] in _console_scripts()
    assert (REPO / "deploy" / definition["build"]["context"]).resolve() == REPO
    assert (REPO / definition["build"]["dockerfile"]).is_file()
    assert definition["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert definition["depends_on"]["db-bootstrap"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(definition["healthcheck"]["test"])


@pytest.mark.parametrize("service", list(SETTINGS))
def test_docker_waits_for_a_service_to_stop_longer_than_its_stop_may_take(
    compose: dict[str, Any], service: str
) -> None:
    limits = SETTINGS[service]().shutdown
    grace = compose["services"][service]["stop_grace_period"]

    assert grace.endswith("s")
    assert float(grace.removesuffix("s")) > limits.drain_s + limits.timeout_s


def test_the_bootstrap_runs_a_module_that_exists(compose: dict[str, Any]) -> None:
    command = compose["services"]["db-bootstrap"]["command"]

    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(command[2]) is not None


def _substitute(value: str) -> str:
    """Compose's ${VAR:-default} with its default, ${VAR} and ${VAR:?message} with a placeholder, as an
    operator's .env would fill them."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", "placeholder", value)


@pytest.mark.parametrize("service", list(SETTINGS))
def test_the_variables_it_sets_are_ones_the_service_reads(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment: dict[str, str] = compose["services"][service]["environment"]
    for name, value in environment.items():
        assert name.startswith(f"TIMPORA_{service.upper()}_") or name == "TIMPORA_REGISTER_FILE"
        monkeypatch.setenv(name, _substitute(str(value)))

    settings = SETTINGS[service]()

    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.http.host == "0.0.0.0"  # noqa: S104 - inside the container, on purpose
    assert settings.database.url.get_secret_value().endswith("@postgres:5432/timpora")
    if isinstance(settings, AlertsSettings):
        assert (settings.smtp.host, settings.smtp.port) == ("mail", 1025)


@pytest.mark.parametrize("service", ["alerts", "sharing"])
def test_both_services_read_the_same_register_from_a_mounted_directory(compose: dict[str, Any], service: str) -> None:
    definition = compose["services"][service]
    in_container = Path(_substitute(definition["environment"]["TIMPORA_REGISTER_FILE"]))
    (mount,) = definition["volumes"]
    source, target, mode = _substitute(mount).split(":")
    # A directory, read-only: a file replaced on the host (as editors do) is the one the container sees.
    assert (Path(target), mode) == (in_container.parent, "ro")
    assert (REPO / "deploy" / source / in_container.name).is_file()
    assert compose["services"]["alerts"]["volumes"] == compose["services"]["sharing"]["volumes"]


def test_no_secret_is_written_into_the_file() -> None:
    text = (REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    for password in re.findall(r"://[^:/\s]+:(\$\{[^}]*\}|[^@\s]+)@", text):
        assert password.startswith("${"), f"a literal password in docker-compose.yml: {password[:3]}..."
    assert len(re.findall(r"://[^:/\s]+:(\$\{[^}]*\}|[^@\s]+)@", text)) == 7
