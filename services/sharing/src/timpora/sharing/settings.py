"""Settings of the sharing service, read from ``TIMPORA_SHARING_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from timpora.common.settings import HttpSettings, ServiceSettings


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TIMPORA_SHARING_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "sharing"
    http: HttpSettings = HttpSettings(port=8003)
