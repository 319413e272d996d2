"""The disclosure record, for the data's controller: what was disclosed about a person (every agency, every channel),
to an agency, or read by one of its officers, and whether the record's hash chain holds. The immigration office is
the controller: it answers a person's request to know who received their data (UU 27/2022 art. 32, within 3x24
hours) from here, or with ``timpora-sharing disclosures person``.

Only an immigration office (a controller in the register) reads it, through the portal for its officer; no other
agency's key does. Each read is in the admin audit log under the officer's name: who looked at whom is on record too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from timpora.common import audit, disclosures, register
from timpora.common.http.deps import Acting, Runtime, acting_for
from timpora.common.http.errors import described
from timpora.common.settings import narrow
from timpora.common.types import AGENCY_ID_PATTERN, OFFICER_USERNAME_PATTERN
from timpora.sharing.api.deps import AgencyKey
from timpora.sharing.settings import SharingSettings

router = APIRouter(
    prefix="/v1/disclosures",
    tags=["data protection (the controller's)"],
    responses={403: described("Only an immigration office (the controller) reads the disclosure record")},
)


async def get_controller(runtime: Runtime, request: Request, key: AgencyKey) -> Acting:
    acting = acting_for(request, key)
    member = register.current(narrow(runtime.settings, SharingSettings).register_file).members.get(acting.agency_id)
    if member is None or not member.controller:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only an immigration office (the controller) reads the disclosure record"
        )
    return acting


Controller = Annotated[Acting, Depends(get_controller)]


class DisclosureQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    foreigner_id: UUID | None = Field(default=None, description="Everything disclosed about this person")
    agency_id: str | None = Field(default=None, pattern=AGENCY_ID_PATTERN, description="Everything this agency got")
    officer: str | None = Field(default=None, pattern=OFFICER_USERNAME_PATTERN, description="Read by this officer")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(default=200, ge=1, le=1000, description="The newest this many")


class Verification(BaseModel):
    checked: int
    #: Why the record cannot be trusted (its first break); None: its hash chain holds.
    broken: str | None


class DisclosureRecord(BaseModel):
    entries: list[dict[str, Any]]
    #: More matched than ``limit``: the newest are shown.
    truncated: bool
    verified: Verification


@router.get("", summary="Disclosures of a person, to an agency, or read by an officer, with the record's verification")
async def disclosure_record(
    runtime: Runtime, controller: Controller, query: Annotated[DisclosureQuery, Query()]
) -> DisclosureRecord:
    async with runtime.engine.connect() as connection:
        found = await disclosures.export(
            connection,
            foreigner_id=query.foreigner_id,
            agency_id=query.agency_id,
            officer=query.officer,
            since=query.since,
            until=query.until,
            limit=query.limit + 1,
        )
        verified = await disclosures.verify(connection)
    async with runtime.engine.begin() as connection:
        await audit.record(
            connection,
            service=runtime.name,
            actor=audit.Actor(audit.ActorKind.OFFICER, _who(controller), key_id=controller.key.key_id),
            action="disclosures.read",
            target=_asked(query),
        )
    return DisclosureRecord(
        entries=[_plain(entry) for entry in found[-query.limit :]],
        truncated=len(found) > query.limit,
        verified=Verification(checked=verified.checked, broken=verified.broken),
    )


def _who(controller: Acting) -> str:
    return f"{controller.officer} (portal, {controller.agency_id})" if controller.officer else controller.agency_id


def _asked(query: DisclosureQuery) -> str:
    asked = query.model_dump(exclude_none=True, exclude={"limit"})
    return " ".join(f"{name}={value}" for name, value in asked.items()) or "everything"


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in entry.items()}
