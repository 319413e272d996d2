"""Settings of the sharing service, read from ``TIMPORA_SHARING_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from timpora.common.register import register_file_setting
from timpora.common.settings import HttpSettings, RelaySettings, ServiceSettings


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIMPORA_SHARING_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    service_name: str = "sharing"
    http: HttpSettings = HttpSettings(port=8003)
    #: The register of members and their agreements (``TIMPORA_REGISTER_FILE``); the shipped one is Bangkalan's.
    register_file: Path = register_file_setting()
    #: How often the register is looked at for a change that needs a rebuild or ends an agency's sharing.
    register_check_s: float = Field(default=1.0, gt=0)
    #: How often the head of the disclosure log is anchored (see timpora.common.disclosures).
    disclosure_checkpoint_s: float = Field(default=60.0, gt=0)
    #: How often the disclosure log's whole hash chain is walked again from its first entry, in the background; a
    #: look at the record checks only what was added since the last check (see timpora.sharing.verification).
    disclosure_walk_s: float = Field(default=3600.0, gt=0)
    #: Registry events the projection consumer applies in one transaction (three statements, however many
    #: agencies): after a bulk import every agency's view catches up in seconds, not a quarter of an hour.
    consumer_batch_size: int = Field(default=500, ge=1, le=5000)
    #: Members of the projections' consumer group this instance runs, each on partitions of its own (at most the
    #: registry topic's six): one batch is worked out in Python while another's statements run in PostgreSQL.
    consumer_streams: int = Field(default=2, ge=1, le=6)
    #: The relay that publishes each agency's topic from the outbox.
    relay: RelaySettings = RelaySettings()
    #: Requests per API key per minute, per instance; beyond it, 429 with Retry-After.
    rate_limit_per_minute: int = Field(default=120, gt=0)
    #: Rows a CSV export or the statistics read, disclose and send at a time (see api/routes/foreigners.py).
    export_page_rows: int = Field(default=1000, ge=1, le=10_000)

    @property
    def consumer_group(self) -> str:
        """The projections' consumer group on the registry topic (``timpora-sharing-projections``)."""
        return self.kafka.catalog.consumer_group("sharing-projections")
