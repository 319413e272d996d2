"""Each service reads its own TIMPORA_<SERVICE>_* variables; secrets never show in reprs."""

from __future__ import annotations

import pytest

from timpora.alerts.settings import AlertsSettings
from timpora.registry.settings import RegistrySettings
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
    all_settings = [RegistrySettings(), AlertsSettings(), SharingSettings()]

    assert len({s.http.port for s in all_settings}) == 3
    assert [s.service_name for s in all_settings] == ["registry", "alerts", "sharing"]


def test_an_invalid_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_SHARING_HTTP__PORT", "not-a-port")

    with pytest.raises(ValueError, match=r"http\.port"):
        SharingSettings()
