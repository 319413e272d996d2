"""What staff send: one pydantic model per kind of change, validated before anything is written."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from timpora.common.events.payloads import PermitType, Sex
from timpora.common.types import Nationality, VillageCode

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Upper-cased before the pattern is checked: "x1234567" is the same passport as "X1234567".
PassportNumber = Annotated[
    str, BeforeValidator(_upper), StringConstraints(min_length=5, max_length=20, pattern=r"^[A-Z0-9]+$")
]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PassportIn(Command):
    number: PassportNumber
    issuing_country: Nationality
    expires_on: date


class SponsorIn(Command):
    name: Annotated[Text, StringConstraints(max_length=200)]
    kind: Annotated[Text, StringConstraints(max_length=40)] = Field(description="employer, family, institution, ...")


class ArrivalIn(Command):
    """An entry through a checkpoint. Creates the foreigner, or matches them by nationality + passport."""

    full_name: Annotated[Text, StringConstraints(max_length=200)]
    sex: Sex
    date_of_birth: date
    nationality: Nationality
    passport: PassportIn
    occupation: Annotated[Text, StringConstraints(max_length=200)] | None = None
    sponsor: SponsorIn | None = None
    port: Annotated[Text, StringConstraints(max_length=100)] = Field(examples=["Juanda International Airport"])
    arrived_on: date

    @model_validator(mode="after")
    def _dates_in_order(self) -> ArrivalIn:
        if self.date_of_birth >= self.arrived_on:
            raise ValueError("date_of_birth must be before arrived_on")
        if self.passport.expires_on < self.arrived_on:
            raise ValueError("passport.expires_on is before arrived_on: the passport had expired on arrival")
        return self


class PermitIn(Command):
    number: Annotated[str, BeforeValidator(_upper), StringConstraints(min_length=1, max_length=40)]
    type: PermitType
    issued_on: date
    expires_on: date
    sponsor: SponsorIn | None = None

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> PermitIn:
        if self.expires_on <= self.issued_on:
            raise ValueError("expires_on must be after issued_on")
        return self


class ExtensionIn(Command):
    expires_on: date


class RevocationIn(Command):
    reason: Annotated[Text, StringConstraints(max_length=500)]


class ResidenceIn(Command):
    address: Annotated[Text, StringConstraints(max_length=500)]
    village_code: VillageCode
    since: date


class StayIn(Command):
    """An accommodation provider's report of a foreign guest (check-in, and check-out when known)."""

    provider: Annotated[Text, StringConstraints(max_length=200)]
    village_code: VillageCode
    check_in: date
    check_out: date | None = None

    @model_validator(mode="after")
    def _check_out_after_check_in(self) -> StayIn:
        if self.check_out is not None and self.check_out < self.check_in:
            raise ValueError("check_out is before check_in")
        return self


class CheckOutIn(Command):
    check_out: date


class DepartureIn(Command):
    port: Annotated[Text, StringConstraints(max_length=100)]
    departed_on: date


class ForeignerPatch(Command):
    """Occupation and sponsor; a field left out stays as it is, ``null`` clears it."""

    occupation: Annotated[Text, StringConstraints(max_length=200)] | None = None
    sponsor: SponsorIn | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ForeignerPatch:
        if not self.model_fields_set:
            raise ValueError("give occupation, sponsor or both")
        return self
