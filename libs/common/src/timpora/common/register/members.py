"""A member agency of the register: who it is, where it acts, how to reach it, and its data-sharing agreement.

The immigration office is the data's controller (``controller``): what it receives about its own data is
processing, recorded as such, and needs no agreement. Every other member receives something about a person
only under its agreement in force (:mod:`timpora.common.register.agreements`), on every channel.
Webhook signing secrets never sit in the register: it names the environment variable that holds each one.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from timpora.common import regions
from timpora.common.events.payloads import ForeignerEvent, Permit
from timpora.common.register.agreements import Agreement
from timpora.common.register.fields import FIELD_NAMES, redact
from timpora.common.types import AgencyId, RegionCode

#: What the controller receives: everything it holds (processing, not a disclosure).
_EVERYTHING = frozenset(FIELD_NAMES)

EmailAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$", max_length=254)
]


class AgencyKind(StrEnum):
    """What a TIMPORA member is: rules pick "the nearest agency" by kind. What it is told is its agreement's."""

    IMMIGRATION = "immigration"  # Kantor Imigrasi, which leads the team
    LOCAL_GOVERNMENT = "local_government"  # Pemkab (Sekda, Bakesbangpol) and its district offices (Kecamatan)
    POLICE = "police"  # Polres
    MILITARY = "military"  # Kodim
    MANPOWER = "manpower"  # Disnaker
    CIVIL_REGISTRY = "civil_registry"  # Dukcapil
    VILLAGE = "village"  # the village head (Kepala Desa)
    PROSECUTOR = "prosecutor"  # Kejaksaan Negeri
    INTELLIGENCE = "intelligence"  # BIN daerah
    PUBLIC_ORDER = "public_order"  # Satpol PP
    RELIGIOUS_AFFAIRS = "religious_affairs"  # Kemenag
    HARBOUR_MASTER = "harbour_master"  # Syahbandar (KSOP/UPP), where there is a port


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    KAFKA = "kafka"


class OfficeHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ISO weekdays, Monday = 1.
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    opens: time = time(8, 0)
    closes: time = time(16, 0)

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHours:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]
    #: In a file: the environment variable holding the Standard Webhooks secret (``whsec_...``).
    secret_env: str | None = None
    #: The secret itself: only as the alerts service keeps it (refused in a register file).
    secret: SecretStr | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Webhook:
        if (self.secret_env is None) == (self.secret is None):
            raise ValueError("give exactly one of secret_env (in files) or secret")
        if self.secret is not None:
            require_signing_secret(self.secret.get_secret_value())
        return self

    def resolve_secret(self) -> str:
        """The signing secret; raises ``ValueError`` naming the variable when it is unset or not a secret."""
        if self.secret is not None:
            return self.secret.get_secret_value()
        value = os.environ.get(self.secret_env or "")
        if not value:
            raise ValueError(f"environment variable {self.secret_env} (the webhook secret) is not set")
        try:
            return require_signing_secret(value)
        except ValueError as error:
            raise ValueError(f"environment variable {self.secret_env}: {error}") from None


def require_signing_secret(secret: str) -> str:
    """``secret`` if Standard Webhooks can sign with it (``whsec_`` + base64 of 24 to 64 bytes)."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:  # noqa: PLR2004 - the spec's bounds
        raise ValueError("a webhook secret holds 24 to 64 bytes (Standard Webhooks)")
    return secret


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: Webhook | None = None
    emails: list[EmailAddress] = Field(default_factory=list)
    #: Publish to the agency's own alert topic, ``timpora.alerts.agency.<id>.v1``.
    kafka: bool = False


#: Notices shown in full in one message, per channel, unless the register says otherwise.
_DEFAULT_CAPS = {"email": 20, "webhook": 100, "kafka": 100}


class ChannelGrouping(BaseModel):
    """How notices reach an agency on one channel in a burst."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: False: one message per notice, sent as soon as it is due (a webhook receiver may want that).
    grouped: bool = True
    #: The rate cap: notices shown in full in one message, the most urgent first; the others are counted and named
    #: by id only ("N more not shown — see the alerts list"), each still in the alerts list for the agency.
    max_shown: int = Field(default=25, ge=1, le=1000)


class Grouping(BaseModel):
    """Alertmanager's grouping, per agency and channel (and, for e-mail, per set of recipients): the first notice
    of a quiet spell waits ``wait_s`` for others to join it; while a burst lasts, a message follows the previous
    one no sooner than ``interval_s``. Every notice keeps its own id inside the message and is acknowledged alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait_s: int = Field(default=30, ge=0, le=3600)
    #: At most an hour: a message holds at most 1,000 notices, so a longer interval would hold a burst back.
    interval_s: int = Field(default=300, ge=0, le=3600)
    email: ChannelGrouping = ChannelGrouping(max_shown=20)
    webhook: ChannelGrouping = ChannelGrouping(max_shown=100)
    kafka: ChannelGrouping = ChannelGrouping(max_shown=100)

    @model_validator(mode="before")
    @classmethod
    def _channel_defaults(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic's raw input
        # A channel given without its cap keeps that channel's default cap, not a common one.
        if isinstance(data, dict):
            data = dict(data)
            for channel, cap in _DEFAULT_CAPS.items():
                given = data.get(channel)
                if isinstance(given, dict) and "max_shown" not in given:
                    data[channel] = {**given, "max_shown": cap}
        return data

    @model_validator(mode="after")
    def _interval_covers_wait(self) -> Grouping:
        if self.interval_s < self.wait_s:
            raise ValueError("interval_s must be at least wait_s: a burst's later messages wait longer than its first")
        return self

    def on(self, channel: Channel) -> ChannelGrouping:
        return {Channel.EMAIL: self.email, Channel.WEBHOOK: self.webhook, Channel.KAFKA: self.kafka}[channel]


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AgencyId
    name: str = Field(min_length=1, max_length=200)
    kind: AgencyKind
    jurisdiction: list[RegionCode] = Field(min_length=1)
    #: IANA zone for office hours and digests; the jurisdiction's own (WIB/WITA/WIT) when omitted.
    time_zone: str | None = None
    office_hours: OfficeHours = OfficeHours()
    channels: Channels = Channels()
    escalation_contacts: list[EmailAddress] = Field(default_factory=list)
    #: How a burst of notices is gathered into few messages, per channel (defaults: 30 s, then every 5 min).
    grouping: Grouping = Grouping()
    #: Local time of the daily digest of the alerts its rules mark ``digest``; office opening when omitted.
    digest_at: time | None = None
    #: False: this agency takes every alert at once, even those its rules would gather into a digest.
    digests: bool = True
    #: An immigration office, the data's controller for its jurisdiction (its area): it receives what it holds
    #: about the people there, as processing. A register may have several, of areas apart.
    controller: bool = False
    #: Its data-sharing agreement (none: it receives nothing about any person, on any channel).
    agreement: Agreement | None = None
    #: Partitions of its own topics (events, alerts) when they are created: one, unless its volume needs more (a
    #: national member reading the whole country's events). Kafka only adds partitions later, by an operator.
    topic_partitions: int = Field(default=1, ge=1, le=48)

    @model_validator(mode="before")
    @classmethod
    def _agreement_names_the_member(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic's raw input
        # In the register an agreement sits under its member and says neither whose it is nor, if it covers the
        # member's whole jurisdiction, where: both come from the member.
        if isinstance(data, dict) and isinstance(data.get("agreement"), dict):
            agreement = dict(data["agreement"])
            for key, value in (("agency_id", data.get("id")), ("agency_name", data.get("name"))):
                if agreement.setdefault(key, value) != value:
                    raise ValueError(f"agreement.{key} must be the member's own ({key.removeprefix('agency_')})")
            agreement.setdefault("jurisdiction", data.get("jurisdiction"))
            data = {**data, "agreement": agreement}
        return data

    @model_validator(mode="after")
    def _one_basis(self) -> Agency:
        if self.controller and self.agreement is not None:
            raise ValueError("the controller processes its own data and has no data-sharing agreement")
        if self.agreement is not None:
            wider = [code for code in self.agreement.jurisdiction if not regions.is_within_any(code, self.jurisdiction)]
            if wider:
                raise ValueError(f"agreement.jurisdiction {', '.join(wider)} is outside the member's jurisdiction")
        return self

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone) if self.time_zone else regions.time_zone(self.jurisdiction[0])

    @property
    def digest_time(self) -> time:
        return self.digest_at or self.office_hours.opens

    def usable_channels(self, *, webhook_disabled: bool = False) -> frozenset[Channel]:
        """The channels the agency can be reached on now (a disabled webhook does not count)."""
        usable = {
            Channel.WEBHOOK: self.channels.webhook is not None and not webhook_disabled,
            Channel.EMAIL: bool(self.channels.emails),
            Channel.KAFKA: self.channels.kafka,
        }
        return frozenset(channel for channel, ok in usable.items() if ok)

    def grouped_channels(self) -> frozenset[Channel]:
        """The channels on which its notices wait to be gathered into messages (see :class:`Grouping`)."""
        return frozenset(channel for channel in Channel if self.grouping.on(channel).grouped)

    def covers(self, village_code: str) -> bool:
        return regions.is_within_any(village_code, regions.as_set(tuple(self.jurisdiction)))

    def depth_for(self, village_code: str) -> int:
        """How local the agency is for ``village_code``: 4 = the village itself, 1 = its province, 0 = not covered."""
        return regions.depth_within(village_code, regions.as_set(tuple(self.jurisdiction)))

    def agreement_at(self, moment: datetime) -> Agreement | None:
        """Its agreement if in force at ``moment`` (by its region's calendar), else None."""
        agreement = self.agreement
        return agreement if agreement is not None and agreement.in_force_at(moment) else None

    def receives(self, event_type: str, permit: Permit | None, place: str, *, guest: bool, moment: datetime) -> bool:
        """Whether news of ``event_type`` about a person at ``place`` may reach it at ``moment``: always for the
        controller of that place, else only as its agreement in force admits."""
        if self.controller:
            return self.covers(place)
        agreement = self.agreement_at(moment)
        return agreement is not None and agreement.admits(event_type, permit, place, guest=guest)

    def record_of(self, data: ForeignerEvent) -> dict[str, Any]:
        """The person as this member may be told of them: everything for the controller, else its agreement's
        record (the caller has checked that the agreement is in force)."""
        if self.controller:
            return redact(data.foreigner, _EVERYTHING)
        if self.agreement is None:
            raise ValueError(f"{self.id} has no data-sharing agreement")
        return self.agreement.record_of(data)

    @property
    def allowed(self) -> frozenset[str]:
        """The fields it may receive (none without an agreement)."""
        if self.controller:
            return _EVERYTHING
        return self.agreement.allowed if self.agreement is not None else frozenset()
