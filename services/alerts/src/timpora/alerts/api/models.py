"""Request and response bodies of the alerts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from timpora.common.types import Typed


class AlertView(BaseModel):
    """One alert as its agency sees it: the notice it was sent, and where it stands."""

    id: UUID
    event_type: str
    severity: str
    status: str
    created_at: datetime
    notice: dict[str, Any]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    escalation_level: int


class AlertQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern="^(open|acknowledged|resolved|superseded)$")
    event_type: str | None = Field(default=None, max_length=100)
    after: str | None = Field(default=None, description="the `next` of the previous page")
    limit: int = Field(default=50, ge=1, le=500)


class AlertCounts(BaseModel):
    open: int = Field(description="Alerts nobody has taken in hand yet")
    acknowledged: int = Field(description="Alerts taken in hand, not yet resolved")


class AlertPage(BaseModel):
    alerts: list[AlertView]
    #: Pass as ``after`` for the next page; absent on the last page.
    next: str | None = None


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The officer who acts on the alert (the key identifies only the agency).
    by: Typed = Field(min_length=1, max_length=150)


class Resolution(Acknowledgement):
    resolution: Typed = Field(min_length=1, max_length=1000, description="What was done, e.g. 'visited; left on 3 Dec'")


class ChannelHealth(BaseModel):
    """How an agency's notices are getting through, on every channel."""

    last_delivered_at: datetime | None = Field(description="When a notice last reached it, on any channel")
    last_delivered_by_channel: dict[str, datetime | None] = Field(
        default_factory=dict, description="When a notice last reached it on each channel it was sent on"
    )
    waiting: int = Field(description="Notices still to be sent, or held while its webhook is disabled")
    dead: int = Field(description="Notices given up on after every retry")


class AgencyView(BaseModel):
    """An agency in the directory; its webhook secret is never shown."""

    agency: dict[str, Any]
    source: str
    updated_at: datetime
    removed_at: datetime | None
    webhook_disabled_at: datetime | None
    webhook_disabled_reason: str | None
    webhook_failing_since: datetime | None
    health: ChannelHealth | None = Field(default=None, description="Its deliveries (the list only)")


def _written_out(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise ValueError("a time is written out, RFC 3339 with its offset (2026-12-05T08:00:00+07:00)")  # noqa: TRY004
    return value


#: An RFC 3339 time with its offset, as the schema says: never a number of seconds, never a local time.
Instant = Annotated[AwareDatetime, BeforeValidator(_written_out)]


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant
    until: Instant
    channel: str | None = Field(default=None, pattern="^(webhook|email|kafka)$")


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern="^(pending|delivered|dead|held|cancelled)$")
    agency_id: str | None = Field(default=None, max_length=63)
    alert_id: UUID | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class AttemptView(BaseModel):
    attempted_at: datetime
    outcome: str
    status_code: int | None
    detail: str
    duration_ms: int


class DeliveryView(BaseModel):
    id: int
    message_id: UUID
    message: str
    alert_id: UUID | None
    agency_id: str
    channel: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_detail: str | None
    #: The message this notice went out in (its attempts are that message's: list them with ``group_id``).
    group_id: UUID | None = None
    history: list[AttemptView] = Field(default_factory=list)


class RoutingView(BaseModel):
    """Which agencies an event went to, and why (the matching rules, the fallbacks taken)."""

    event_id: UUID
    event_type: str
    occurred_at: datetime
    routed_at: datetime
    decisions: list[dict[str, Any]]
    alerts: list[UUID]


class DeadLetter(BaseModel):
    partition: int
    offset: int
    key: str | None
    reason: str
    consumer: str
    source_topic: str
    source_offset: str
    failed_at: str
    event_type: str | None


class ReportIn(BaseModel):
    """What a village's officer reports to immigration: a foreigner, or a situation that looks wrong."""

    model_config = ConfigDict(extra="forbid")

    #: Who it is about, as far as the village knows (a name, a description); may be unknown.
    about: Typed | None = Field(default=None, max_length=300)
    where: Typed = Field(min_length=1, max_length=300, description="Where in the village: a house, a street, a boat")
    what: Typed = Field(min_length=1, max_length=2000, description="What was seen, when, by whom")
    #: Which of the agency's villages; needed only when its jurisdiction holds more than one.
    village_code: str | None = Field(default=None, pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
    #: The officer reporting (an agency key names them here; the portal's officer is the one logged in).
    by: Typed | None = Field(default=None, min_length=1, max_length=150)
    #: A JPEG or PNG photo, base64; its metadata (the phone's GPS, its serial number) is dropped before it is kept.
    photo_base64: str | None = Field(default=None, max_length=28_000_000)
    #: Your own id for the report: sent again with the same id (a retry after a timeout), it is the same report.
    client_ref: UUID | None = None


class ReportReceipt(BaseModel):
    id: UUID
    received_at: datetime
    village_code: str
    #: The immigration offices the report reached, each as an alert.
    offices: list[str]
