"""What staff send: one pydantic model per kind of change, validated before anything is written."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from timpora.common.events.payloads import EnforcementAction, PermitType, Sex, StayPurpose
from timpora.common.types import Nationality, VillageCode, VisaIndex, without_nul

# What is left once the value is stripped must not be empty; the schemas say so with a pattern naming the characters
# each strip removes (not \s, whose meaning differs between regex dialects): pydantic strips Unicode White_Space,
# Python's str.strip U+001C..U+001F as well.
_WHITE_SPACE = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

_KEPT_BY_PYTHON_STRIP = f"[^{_WHITE_SPACE}\\u001c-\\u001f]"
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    AfterValidator(without_nul),
    # Something left once stripped, and no NUL anywhere (see without_nul).
    Field(json_schema_extra={"pattern": f"^[^\\u0000]*[^{_WHITE_SPACE}\\u0000][^\\u0000]*$"}),
]


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Upper-cased before the pattern is checked: "x1234567" is the same passport as "X1234567". Pydantic leaves a
# pattern checked after a before-validator out of the JSON Schema: the schema is given it (either case) by hand.
PassportNumber = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(min_length=5, max_length=20, pattern=r"^[A-Z0-9]+$"),
    Field(json_schema_extra={"pattern": "^[A-Za-z0-9]{5,20}$"}),
]


def later_than(field: str, earlier: str, *, or_same: bool = False) -> Any:  # noqa: ANN401 - pydantic's decorator
    """A validator of ``field`` against the ``earlier`` field declared before it, reported at ``field`` itself.

    Every rule across fields is a field validator on the later field, never a model validator: a model validator's
    error has no field (``loc`` ``["body"]``), and a client, or a form, must be told which field to correct.
    """

    def check(value: date | None, info: ValidationInfo) -> date | None:
        other = info.data.get(earlier)
        if value is not None and other is not None and (value < other if or_same else value <= other):
            raise ValueError(f"{field} must be {'on or ' if or_same else ''}after {earlier}")
        return value

    return field_validator(field)(check)


#: A permit's, visa's or decision's number, upper-cased; something besides spaces (the schema says so by hand, as
#: for the passport number).
DocumentNumber = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(min_length=1, max_length=40),
    Field(json_schema_extra={"pattern": _KEPT_BY_PYTHON_STRIP}),
]
#: The permit types a permit may be issued as (a visa on arrival is a visa), and those a conversion gives: in the
#: schema as enums, and refused with a reason by the validators below.
ISSUABLE = WithJsonSchema(
    {"type": "string", "enum": [kind.value for kind in PermitType if kind.value != "visa-on-arrival"]}
)
CONVERTIBLE_INTO = WithJsonSchema({"type": "string", "enum": ["itas", "itap"]})


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PassportIn(Command):
    number: PassportNumber
    issuing_country: Nationality
    expires_on: date


class SponsorIn(Command):
    name: Annotated[Text, StringConstraints(max_length=200)]
    kind: Annotated[Text, StringConstraints(max_length=40)] = Field(description="employer, family, institution, ...")


class VisaIn(Command):
    index: VisaIndex = Field(
        description="A1 visa-exempt, B1 visa on arrival, C/D visit visas, E limited-stay visas (E23 work, ...)",
        examples=["B1"],
        # Pydantic leaves a pattern checked after a before-validator (upper-casing) out of the schema.
        json_schema_extra={"pattern": "^[A-Ea-e][0-9]{1,2}[A-Za-z]?$"},
    )
    number: DocumentNumber | None = None


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
    arrived_on: date = Field(description="After date_of_birth, and on or before passport.expires_on")
    visa: VisaIn | None = Field(default=None, description="The visa (or exemption, A1) the person entered on")
    previous_passport_number: PassportNumber | None = Field(
        default=None,
        description="The passport this one renewed, when the registry may not know the new one yet: the arrival "
        "is matched to its holder and records the renewal, instead of creating a second person (not the "
        "passport's own number)",
    )

    @field_validator("arrived_on")
    @classmethod
    def _arrived_after_birth_on_a_valid_passport(cls, value: date, info: ValidationInfo) -> date:
        born, passport = info.data.get("date_of_birth"), info.data.get("passport")
        if born is not None and born >= value:
            raise ValueError("arrived_on must be after date_of_birth")
        if isinstance(passport, PassportIn) and passport.expires_on < value:
            raise ValueError("passport.expires_on is before arrived_on: the passport had expired on arrival")
        return value

    @field_validator("previous_passport_number")
    @classmethod
    def _another_passport(cls, value: str | None, info: ValidationInfo) -> str | None:
        passport = info.data.get("passport")
        if value is not None and isinstance(passport, PassportIn) and value == passport.number:
            raise ValueError("previous_passport_number is the passport itself; leave it out")
        return value


class PassportRenewalIn(Command):
    """A new passport for the same person: the old one stays on record and findable."""

    passport: PassportIn
    renewed_on: date = Field(description="When the new passport was issued: before passport.expires_on")

    @field_validator("renewed_on")
    @classmethod
    def _before_the_new_passport_expires(cls, value: date, info: ValidationInfo) -> date:
        passport = info.data.get("passport")
        if isinstance(passport, PassportIn) and passport.expires_on <= value:
            raise ValueError("passport.expires_on must be after renewed_on")
        return value


#: Stay permits given for a purpose (UU 6/2011 art. 52 and 54).
WITH_PURPOSE = frozenset({PermitType.ITAS, PermitType.ITAP})


class PermitIn(Command):
    number: DocumentNumber
    type: Annotated[PermitType, ISSUABLE]
    purpose: StayPurpose | None = Field(
        default=None,
        validate_default=True,
        description="Required for an ITAS; an ITAP may have one; no other type has one",
    )
    issued_on: date
    expires_on: date = Field(description="After issued_on")
    sponsor: SponsorIn | None = None

    @field_validator("type")
    @classmethod
    def _a_stay_permit(cls, value: PermitType) -> PermitType:
        if value is PermitType.VISA_ON_ARRIVAL:
            raise ValueError(
                "a visa on arrival is a visa (index B1), not a stay permit; record it as the arrival's visa "
                "and issue a visit permit"
            )
        return value

    @field_validator("purpose")
    @classmethod
    def _purpose_of_the_type(cls, value: StayPurpose | None, info: ValidationInfo) -> StayPurpose | None:
        kind = info.data.get("type")  # absent when the type itself was refused
        if kind is PermitType.ITAS and value is None:
            raise ValueError("an ITAS is given for a purpose (work, investment, family, study, retirement, other)")
        if value is not None and kind is not None and kind not in WITH_PURPOSE:
            raise ValueError("only an ITAS or ITAP permit has a purpose")
        return value

    _expires = later_than("expires_on", "issued_on")


class ExtensionIn(Command):
    expires_on: date


class RevocationIn(Command):
    reason: Annotated[Text, StringConstraints(max_length=500)]


class ResidenceIn(Command):
    address: Annotated[Text, StringConstraints(max_length=500)]
    village_code: VillageCode
    since: date


class StayIn(Command):
    """An accommodation provider's report of a foreign guest (check-in, and check-out when known): a provider
    from the register (``accommodation_id``), or one not registered yet by its name and village."""

    accommodation_id: UUID | None = Field(default=None, description="Or provider and village_code, not both")
    provider: Annotated[Text, StringConstraints(max_length=200)] | None = Field(
        default=None, validate_default=True, description="Without accommodation_id only (and then required)"
    )
    village_code: VillageCode | None = Field(
        default=None, validate_default=True, description="Without accommodation_id only (and then required)"
    )
    check_in: date
    check_out: date | None = Field(default=None, description="On or after check_in")
    planned_check_out: date | None = Field(
        default=None, description="When the guest means to leave: on or after check_in"
    )

    @field_validator("provider", "village_code")
    @classmethod
    def _a_registered_accommodation_or_its_place(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "accommodation_id" not in info.data:
            return value  # the id itself was refused: that is the error to correct first
        if info.data["accommodation_id"] is not None and value is not None:
            raise ValueError("give accommodation_id, or provider and village_code, not both")
        if info.data["accommodation_id"] is None and value is None:
            raise ValueError(f"{info.field_name} is required without accommodation_id")
        return value

    _check_out = later_than("check_out", "check_in", or_same=True)
    _planned = later_than("planned_check_out", "check_in", or_same=True)


class AccommodationIn(Command):
    name: Annotated[Text, StringConstraints(max_length=200)]
    address: Annotated[Text, StringConstraints(max_length=500)]
    village_code: VillageCode


class GuestIn(Command):
    """The guest as the accommodation knows them (from the passport shown at check-in)."""

    full_name: Annotated[Text, StringConstraints(max_length=200)]
    nationality: Nationality
    passport_number: PassportNumber


class StayReportIn(Command):
    """A provider's report of a guest, who may not be in the registry yet."""

    accommodation_id: UUID
    guest: GuestIn
    check_in: date
    check_out: date | None = Field(default=None, description="On or after check_in")
    planned_check_out: date | None = Field(default=None, description="On or after check_in")

    _check_out = later_than("check_out", "check_in", or_same=True)
    _planned = later_than("planned_check_out", "check_in", or_same=True)


class LinkIn(Command):
    foreigner_id: UUID


class CheckOutIn(Command):
    check_out: date


class DepartureIn(Command):
    port: Annotated[Text, StringConstraints(max_length=100)]
    departed_on: date


class ForeignerPatch(Command):
    """Occupation and sponsor; a field left out stays as it is, ``null`` clears it."""

    # The one rule across the whole body (at least one field) has no field to name: the schema says it instead.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    occupation: Annotated[Text, StringConstraints(max_length=200)] | None = None
    sponsor: SponsorIn | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ForeignerPatch:
        if not self.model_fields_set:
            raise ValueError("give occupation, sponsor or both")
        return self


Reference = Annotated[Text, StringConstraints(max_length=100)]


class OverstayFeeIn(Command):
    """A payment of the overstay fee (UU 6/2011 art. 78(2)) for the days overstayed until ``paid_on``."""

    amount_idr: int = Field(gt=0, le=10_000_000_000, description="Amount paid, in rupiah")
    receipt_number: Annotated[Text, StringConstraints(max_length=60)]
    paid_on: date


class EnforcementIn(Command):
    action: EnforcementAction
    on: date
    reference: Reference = Field(description="The decision's or order's number")


class DeportationIn(Command):
    """A deportation carried out: the person left through ``port`` under the decision ``reference``."""

    port: Annotated[Text, StringConstraints(max_length=100)]
    deported_on: date
    reference: Reference


class BanIn(Command):
    """A re-entry ban (penangkalan, UU 6/2011 art. 102)."""

    since: date
    until: date = Field(description="After since")
    reference: Reference

    _until = later_than("until", "since")


class ConversionIn(PermitIn):
    """The permit a conversion gives (ITK to ITAS, ITAS to ITAP); the old one ends on ``issued_on``."""

    type: Annotated[PermitType, CONVERTIBLE_INTO]

    @field_validator("type")
    @classmethod
    def _a_longer_stay(cls, value: PermitType) -> PermitType:
        if value not in WITH_PURPOSE:
            raise ValueError("a permit converts into an ITAS or an ITAP")
        return value


class ReEntryPermitIn(Command):
    number: DocumentNumber
    issued_on: date
    expires_on: date = Field(description="After issued_on")

    _expires = later_than("expires_on", "issued_on")


class ExitPermitIn(Command):
    number: DocumentNumber
    issued_on: date
    leave_by: date = Field(description="The holder must have left by this day: on or after issued_on")

    _leave_by = later_than("leave_by", "issued_on", or_same=True)
