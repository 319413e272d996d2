"""Settings of the alerts service, read from ``TIMPORA_ALERTS_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from timpora.alerts.channels.email import SmtpSettings
from timpora.alerts.domain.rules import DEFAULT_RULES
from timpora.common.register import destinations, register_file_setting
from timpora.common.register.destinations import IPNetwork
from timpora.common.settings import HttpSettings, ServiceSettings


class DeliverySettings(BaseModel):
    enabled: bool = True
    #: Deliveries claimed per round; each is sent concurrently with the others of its round.
    batch_size: int = Field(default=64, gt=0, le=1000)
    #: A claimed delivery not settled within this time (a crashed worker) is claimed again.
    lease_s: float = Field(default=60.0, gt=0)
    #: Polling happens anyway in case a notification is lost (LISTEN is best-effort by design).
    poll_interval_s: float = Field(default=1.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    #: Retries stop (and the delivery is dead) this long after the first attempt; Standard Webhooks: ~3 days.
    give_up_after_h: float = Field(default=72.0, gt=0)
    #: A webhook endpoint whose deliveries have all failed for this long is disabled, and its agency told by e-mail.
    disable_endpoint_after_h: float = Field(default=24.0, gt=0)

    @model_validator(mode="after")
    def _webhooks_wait_within_the_lease(self) -> DeliverySettings:
        if self.webhook_timeout_s >= self.attempt_bound_s:
            raise ValueError(
                f"webhook_timeout_s ({self.webhook_timeout_s}) must be below half of lease_s ({self.lease_s}): "
                "an attempt is cut off there, so that its delivery is not claimed again while it runs"
            )
        return self

    @property
    def attempt_bound_s(self) -> float:
        """How long one attempt may take, whatever its channel: half the lease, so that a round is settled before
        its deliveries can be claimed again."""
        return self.lease_s / 2

    @property
    def give_up_after(self) -> timedelta:
        return timedelta(hours=self.give_up_after_h)

    @property
    def disable_endpoint_after(self) -> timedelta:
        return timedelta(hours=self.disable_endpoint_after_h)


class LifecycleSettings(BaseModel):
    #: An overstay alert nobody acknowledged within this time goes to the agency's escalation contacts,
    #: and after as long again to the next level of jurisdiction.
    escalate_after_h: float = Field(default=24.0, gt=0)
    #: How often escalations and digests are looked for.
    tick_s: float = Field(default=60.0, gt=0)
    #: Closed alerts, their notices and attempts, and the events behind them, are deleted this long after
    #: they closed (events nobody was alerted about: after they were routed). Personal data is not kept for ever.
    retention_days: int = Field(default=365, ge=1)

    @property
    def escalate_after(self) -> timedelta:
        return timedelta(hours=self.escalate_after_h)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIMPORA_ALERTS_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    service_name: str = "alerts"
    http: HttpSettings = HttpSettings(port=8002)
    #: The register of members and their agreements (``TIMPORA_REGISTER_FILE``), re-read when it changes.
    register_file: Path = register_file_setting()
    #: Routing rules; re-read when the file changes, a broken file is refused and the rules in force kept.
    rules_file: Path = DEFAULT_RULES
    #: Events applied in one transaction (one commit); a batch with a failing event is redone one by one.
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    smtp: SmtpSettings = SmtpSettings()
    delivery: DeliverySettings = DeliverySettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    #: The largest photo a village's report may carry (a phone's photo is 2 to 5 MB; 6 MB by default).
    report_photo_max_bytes: int = Field(default=6 * 1024 * 1024, ge=64 * 1024, le=20 * 1024 * 1024)
    #: Networks webhooks may reach besides the public internet (``TIMPORA_WEBHOOK_ALLOWED_NETWORKS``, CIDRs,
    #: comma-separated; none by default): loopback, private, link-local and metadata addresses are refused.
    #: One variable for every service that reads the register, which refuses such a webhook too.
    webhook_allowed_networks: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        default=(), validation_alias=destinations.ALLOWED_NETWORKS_VARIABLE
    )

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> tuple[IPNetwork, ...]:
        if isinstance(value, str | list | tuple):
            return destinations.parse_networks(value)
        raise ValueError("a list of networks (CIDRs)")

    @property
    def consumer_group(self) -> str:
        """The routing consumer group on the registry topic (``timpora-alerts-routing``)."""
        return self.kafka.catalog.consumer_group("alerts-routing")
