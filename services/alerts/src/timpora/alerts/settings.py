"""Settings of the alerts service, read from ``TIMPORA_ALERTS_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from timpora.common.settings import HttpSettings, ServiceSettings


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TIMPORA_ALERTS_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "alerts"
    http: HttpSettings = HttpSettings(port=8002)
