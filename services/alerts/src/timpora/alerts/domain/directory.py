"""The agency directory: who the supervision team's agencies are, where they act, and how to reach them.

Loaded from a YAML file kept in version control (``agencies_file``) at start, and changed afterwards
through the admin API; both write the same ``agencies`` table, which is what routing reads.
Webhook signing secrets never sit in the file: it names the environment variable that holds each one.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from timpora.common import regions
from timpora.common.config_files import load_model, refuse_repeats
from timpora.common.types import AgencyId, RegionCode

DEFAULT_AGENCIES = Path(__file__).with_name("default_agencies.yaml")

EmailAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$", max_length=254)
]


class AgencyKind(StrEnum):
    """What a TIMPORA member is; its alerts carry the fields its kind needs (``notices.ROLE_FIELDS``)."""

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
    #: Through the admin API: the secret itself. Stored, never shown again.
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
    #: Whether it supervises guests of accommodations in its jurisdiction who live elsewhere (as its data-sharing
    #: agreement's ``guests`` says): their news reaches it by rules that name it.
    guests: bool = False
    #: Local time of the daily digest of the alerts its rules mark ``digest``; office opening when omitted.
    digest_at: time | None = None
    #: False: this agency takes every alert at once, even those its rules would gather into a digest.
    digests: bool = True

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

    def covers(self, village_code: str) -> bool:
        return regions.is_within_any(village_code, self.jurisdiction)

    def depth_for(self, village_code: str) -> int:
        """How local the agency is for ``village_code``: 4 = the village itself, 1 = its province, 0 = not covered."""
        return max(
            (prefix.count(".") + 1 for prefix in self.jurisdiction if regions.is_within(village_code, prefix)),
            default=0,
        )


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agencies: list[Agency]

    @model_validator(mode="after")
    def _unique(self) -> DirectoryFile:
        refuse_repeats((agency.id for agency in self.agencies), "more than one agency with id")
        return self


def load(path: Path) -> list[Agency]:
    """The agencies in ``path``; raises ``ConfigFileError`` naming the file and the fields at fault."""
    return load_model(path, DirectoryFile).agencies
