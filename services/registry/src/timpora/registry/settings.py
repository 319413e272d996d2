"""Settings of the registry service, read from ``TIMPORA_REGISTRY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import SettingsConfigDict

from timpora.common.register import register_file_setting
from timpora.common.settings import HttpSettings, RelaySettings, ServiceSettings


class ExpirySettings(BaseModel):
    enabled: bool = True
    thresholds_days: list[int] = Field(default=[30, 14, 7, 1], min_length=1)
    interval_s: float = Field(default=600.0, gt=0)
    batch_size: int = Field(default=500, gt=0)
    #: A stay with no check-out and no planned end is overdue after this many days (then immigration and the
    #: accommodation's regency are told, once).
    stay_overdue_after_days: int = Field(default=30, gt=0)

    @field_validator("thresholds_days")
    @classmethod
    def _distinct_positive_descending(cls, value: list[int]) -> list[int]:
        if any(days <= 0 for days in value) or len(set(value)) != len(value):
            raise ValueError("thresholds must be distinct positive numbers of days")
        return sorted(value, reverse=True)


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIMPORA_REGISTRY_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    service_name: str = "registry"
    http: HttpSettings = HttpSettings(port=8001)
    relay: RelaySettings = RelaySettings()
    #: The register (``TIMPORA_REGISTER_FILE``): which immigration office controls which area, for its staff.
    register_file: Path = register_file_setting()
    expiry: ExpirySettings = ExpirySettings()
    #: Source attribute of every event the registry publishes.
    event_source: str = "/timpora/registry"
    idempotency_retention_days: int = Field(default=7, ge=1)
    #: Accommodations' reports of guests not (yet) in the registry are kept this long, then deleted.
    stay_report_retention_days: int = Field(default=90, ge=1)
