"""Settings of the registry service, read from ``TIMPORA_REGISTRY_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from timpora.common.settings import HttpSettings, ServiceSettings


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TIMPORA_REGISTRY_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "registry"
    http: HttpSettings = HttpSettings(port=8001)
