"""Settings of the sharing service, read from ``TIMPORA_SHARING_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from timpora.common.settings import HttpSettings, RelaySettings, ServiceSettings
from timpora.sharing.domain.agreements import DEFAULTS


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TIMPORA_SHARING_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "sharing"
    http: HttpSettings = HttpSettings(port=8003)
    #: The data-sharing agreements in force (YAML); the shipped defaults cover Bangkalan's TIMPORA.
    agreements_file: Path = DEFAULTS
    #: The relay that publishes each agency's topic from the outbox.
    relay: RelaySettings = RelaySettings()
    #: Requests per API key per minute, per instance; beyond it, 429 with Retry-After.
    rate_limit_per_minute: int = Field(default=120, gt=0)

    @property
    def consumer_group(self) -> str:
        """The projections' consumer group on the registry topic (``timpora-sharing-projections``)."""
        return self.kafka.catalog.consumer_group("sharing-projections")
