"""Each service reads its own TIMPORA_<SERVICE>_* variables; secrets never show in reprs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from timpora.alerts.main import SERVICE as ALERTS
from timpora.alerts.settings import AlertsSettings
from timpora.common.kafka.broker import client_options, make_broker
from timpora.common.settings import KafkaSettings, OperatorKafkaSettings, refuse_placeholder, settings_refused
from timpora.portal.settings import PortalSettings
from timpora.registry.settings import RegistrySettings
from timpora.sharing.main import SERVICE as SHARING
from timpora.sharing.settings import SharingSettings


def test_a_service_reads_its_prefixed_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_REGISTRY_KAFKA__BOOTSTRAP_SERVERS", "kafka-a:9092")
    monkeypatch.setenv("TIMPORA_REGISTRY_DATABASE__URL", "postgresql+asyncpg://u:hunter2@db/timpora")
    monkeypatch.setenv("TIMPORA_REGISTRY_HTTP__PORT", "9101")
    monkeypatch.setenv("TIMPORA_ALERTS_KAFKA__BOOTSTRAP_SERVERS", "kafka-b:9092")

    registry = RegistrySettings()

    assert registry.kafka.bootstrap_servers == "kafka-a:9092"
    assert registry.http.port == 9101
    assert registry.database.url.get_secret_value().endswith("@db/timpora")
    assert AlertsSettings().kafka.bootstrap_servers == "kafka-b:9092"
    assert "hunter2" not in repr(registry)


def test_services_have_distinct_default_ports_and_schemas() -> None:
    all_settings = [RegistrySettings(), AlertsSettings(), SharingSettings(), PortalSettings()]

    assert len({s.http.port for s in all_settings}) == 4
    assert [s.http.port for s in all_settings] == [8001, 8002, 8003, 8004]
    assert [s.service_name for s in all_settings] == ["registry", "alerts", "sharing", "portal"]


def test_the_portal_reads_its_own_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_PORTAL_DATABASE__URL", "postgresql+asyncpg://timpora_portal:hunter2@db/timpora")
    monkeypatch.setenv("TIMPORA_PORTAL_HTTP__PORT", "9104")
    monkeypatch.setenv("TIMPORA_SHARING_HTTP__PORT", "9103")

    portal = PortalSettings()

    assert portal.http.port == 9104
    assert portal.database.url.get_secret_value().endswith("@db/timpora")
    assert "hunter2" not in repr(portal)


def test_an_invalid_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_SHARING_HTTP__PORT", "not-a-port")

    with pytest.raises(ValueError, match=r"http\.port"):
        SharingSettings()


def test_both_services_read_one_register_from_one_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    register = tmp_path / "register.yaml"
    monkeypatch.setenv("TIMPORA_REGISTER_FILE", str(register))
    assert AlertsSettings().register_file == SharingSettings().register_file == register
    assert PortalSettings().register_file == register


@pytest.mark.parametrize("retired", ["TIMPORA_ALERTS_AGENCIES_FILE", "TIMPORA_SHARING_AGREEMENTS_FILE"])
def test_a_retired_setting_still_set_stops_the_service_naming_what_replaced_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], retired: str
) -> None:
    monkeypatch.setenv(retired, "/etc/timpora/old.yaml")
    service = ALERTS if "ALERTS" in retired else SHARING

    assert service.main(["migrate"]) == 2

    assert f"{retired} is no longer read; use TIMPORA_REGISTER_FILE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "password", ["change-me", "change-me-too", "Change-Me-Three", "changeme", "password", "secret", " SECRET ", ""]
)
def test_a_placeholder_or_empty_password_is_refused(password: str) -> None:
    with pytest.raises(ValueError, match=r"the password is (a placeholder|empty)"):
        refuse_placeholder(password)


@pytest.mark.parametrize("password", ["1f0c9d2b7a6e", "correct horse battery staple", "secrets-manager-issued-Xk2"])
def test_a_real_password_passes(password: str) -> None:
    refuse_placeholder(password)


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        (
            "TIMPORA_REGISTRY_DATABASE__URL",
            "postgresql+asyncpg://timpora_registry:change-me@db/timpora",
            "database.url",
        ),
        ("TIMPORA_REGISTRY_DATABASE__URL", "postgresql+asyncpg://timpora_registry:@db/timpora", "database.url"),
        ("TIMPORA_REGISTRY_KAFKA__SASL_PASSWORD", "change-me-3", "kafka.sasl_password"),
    ],
)
def test_a_service_refuses_a_placeholder_password_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as refused:
        RegistrySettings()

    [line] = settings_refused(refused.value)
    assert line.startswith(f"setting {setting} refused: the password is ")
    assert "change-me-3" not in str(refused.value)


def test_a_url_without_a_password_is_not_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    # Peer or trust authentication: nothing to check.
    monkeypatch.setenv("TIMPORA_REGISTRY_DATABASE__URL", "postgresql+asyncpg://timpora_registry@db/timpora")

    assert RegistrySettings().database.url.get_secret_value().endswith("@db/timpora")


def test_the_operators_kafka_password_is_refused_when_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_KAFKA_PASSWORD", "change-me-3")

    with pytest.raises(ValidationError) as refused:
        OperatorKafkaSettings()

    [line] = settings_refused(refused.value)
    assert line.startswith("setting password refused: the password is a placeholder")
    # Its text reaches a terminal when a caller does not catch it (python -m timpora.common.kafka.provision).
    assert "change-me-3" not in str(refused.value)


@pytest.mark.parametrize(
    ("retired", "instead"),
    [
        ("TIMPORA_ALERTS_SMTP__STARTTLS", "TIMPORA_ALERTS_SMTP__TLS=starttls"),
        ("TIMPORA_ALERTS_SMTP__USE_TLS", "TIMPORA_ALERTS_SMTP__TLS=implicit"),
    ],
)
def test_the_old_smtp_tls_switches_stop_the_alerts_service_naming_the_new_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], retired: str, instead: str
) -> None:
    monkeypatch.setenv(retired, "true")

    assert ALERTS.main(["migrate"]) == 2

    assert f"{retired} is no longer read; use {instead}" in capsys.readouterr().err


@given(
    addresses=st.lists(
        st.tuples(st.from_regex(r"\A[a-z][a-z0-9.-]{0,20}\Z"), st.integers(1, 65535)).map(
            lambda pair: f"{pair[0]}:{pair[1]}"
        ),
        min_size=1,
        max_size=5,
    )
)
def test_every_kafka_client_is_given_each_broker_of_a_cluster_apart(addresses: list[str]) -> None:
    """A cluster's "a:9092, b:9092,c:9092" (the stack's env with three nodes, compose's ha profile) reaches the
    services' FastStream broker and the plain clients as three addresses: FastStream took the string as one host
    name, and no service of a cluster could start."""
    settings = KafkaSettings(bootstrap_servers=", ".join(addresses))
    assert settings.bootstrap_list == addresses
    assert make_broker(settings, client_id="test")._connection_kwargs["bootstrap_servers"] == addresses
    assert client_options(settings)["bootstrap_servers"] == addresses
