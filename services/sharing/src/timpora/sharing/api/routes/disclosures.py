"""The disclosure record, for the data's controller: what was disclosed about a person (every agency, every channel),
to an agency, or read by one of its officers, and whether the record's hash chain holds. The immigration office is
the controller: it answers a person's request to know who received their data (UU 27/2022 art. 32, within 3x24
hours) from here, or with ``timpora-sharing disclosures person``.

Only an immigration office (a controller in the register) reads it, through the portal for its officer; no other
agency's key does. Each read is in the admin audit log under the officer's name: who looked at whom is on record too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid5

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from timpora.common import audit, disclosures, register
from timpora.common.http.deps import Acting, Runtime, acting_for
from timpora.common.http.errors import described
from timpora.common.http.query import QueryModel
from timpora.common.http.ratelimit import RateLimiter
from timpora.common.settings import narrow
from timpora.common.types import AGENCY_ID_PATTERN, OFFICER_USERNAME_PATTERN
from timpora.sharing import verification
from timpora.sharing.api.deps import AgencyKey
from timpora.sharing.settings import SharingSettings

router = APIRouter(
    prefix="/v1/disclosures",
    tags=["data protection (the controller's)"],
    responses={403: described("Only an immigration office (the controller) reads the disclosure record")},
)


@dataclass(frozen=True, slots=True)
class Office:
    acting: Acting
    #: The members whose whole jurisdiction lies in the office's area, the office among them: what they received is
    #: the office's data's; what a member beyond it (a national agency, another office's) received is not this
    #: office's to read here.
    recipients: frozenset[str]


async def get_office(runtime: Runtime, request: Request, key: AgencyKey) -> Office:
    acting = acting_for(request, key)
    book = register.current(narrow(runtime.settings, SharingSettings).register_file)
    office = book.members.get(acting.agency_id)
    if office is None or not office.controller:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only an immigration office (the controller) reads the disclosure record"
        )
    limiter: RateLimiter[UUID] = request.app.state.rate_limiter
    # Each look checks the chain: an officer has the minute an agency's key has, as for every read.
    wait = limiter.check(uuid5(key.key_id, f"{acting.agency_id}/{acting.officer}"))
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many requests for this key", headers={"Retry-After": f"{wait:.0f}"}
        )
    return Office(acting, book.members_of(office))


CurrentOffice = Annotated[Office, Depends(get_office)]


class DisclosureQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    foreigner_id: UUID | None = Field(default=None, description="Everything disclosed about this person")
    agency_id: str | None = Field(default=None, pattern=AGENCY_ID_PATTERN, description="Everything this agency got")
    officer: str | None = Field(default=None, pattern=OFFICER_USERNAME_PATTERN, description="Read by this officer")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(default=200, ge=1, le=1000, description="The newest this many")
    before: int | None = Field(default=None, ge=1, description="Older than this entry (the next page back)")
    verify: bool = Field(
        default=True,
        description=(
            "Check the record's hash chain and say whether it holds (the page a person reads): the entries added "
            "since the last check are walked, and the whole chain every hour in the background; false for the "
            "further pages of one download"
        ),
    )


class Verification(BaseModel):
    checked: int
    #: Why the record cannot be trusted (its first break); None: its hash chain holds as far as it was checked
    #: (nowhere yet while ``walked_at`` is null).
    broken: str | None
    walked_at: datetime | None = Field(
        description=(
            "When the whole chain was last walked from its first entry (newer entries: on each look); null: the "
            "first whole walk, which the service makes at start, is still to come, and nothing is verified yet"
        )
    )
    overdue: bool = Field(
        description="The whole walk is overdue (none for two intervals, or one dated in the future): tell the operator"
    )


class DisclosureRecord(BaseModel):
    entries: list[dict[str, Any]]
    #: More matched than ``limit``: the newest are shown.
    truncated: bool
    #: None when not asked for (``verify=false``).
    verified: Verification | None


@router.get("", summary="Disclosures of a person, to an agency, or read by an officer, with the record's verification")
async def disclosure_record(
    runtime: Runtime, office: CurrentOffice, query: Annotated[DisclosureQuery, Depends(QueryModel(DisclosureQuery))]
) -> DisclosureRecord:
    controller = office.acting
    if query.foreigner_id is None and query.agency_id is None and query.officer is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["query", "foreigner_id"],
                    "msg": "say whose: a foreigner, an agency or an officer",
                    "type": "missing",
                }
            ],
        )
    if query.agency_id is not None and query.agency_id not in office.recipients:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", "agency_id"], "msg": "not an agency of your office's area", "type": "forbidden_filter"}],
        )
    async with runtime.engine.connect() as connection:
        found = await disclosures.export(
            connection,
            foreigner_id=query.foreigner_id,
            agency_id=query.agency_id,
            officer=query.officer,
            since=query.since,
            until=query.until,
            limit=query.limit + 1,
            agency_ids=office.recipients,
            before=query.before,
        )
    # Only what was added since the last check is walked: the whole record is, in the background.
    walk_s = narrow(runtime.settings, SharingSettings).disclosure_walk_s
    verified = await verification.current(runtime.engine, walk_s) if query.verify else None
    async with runtime.engine.begin() as connection:
        await audit.record(
            connection,
            service=runtime.name,
            actor=audit.Actor(audit.ActorKind.OFFICER, _who(controller), key_id=controller.key.key_id),
            action="disclosures.read",
            target=_asked(query),
        )
    return DisclosureRecord(
        entries=[_plain(entry, named=query.foreigner_id is not None) for entry in found[-query.limit :]],
        truncated=len(found) > query.limit,
        verified=None
        if verified is None
        else Verification(
            checked=verified.result.checked,
            broken=verified.result.broken,
            walked_at=verified.walked_at,
            overdue=verified.overdue,
        ),
    )


def _who(controller: Acting) -> str:
    return f"{controller.officer} (portal, {controller.agency_id})" if controller.officer else controller.agency_id


def _asked(query: DisclosureQuery) -> str:
    asked = query.model_dump(exclude_none=True, exclude={"limit", "verify"})
    return " ".join(f"{name}={value}" for name, value in asked.items()) or "everything"


def _plain(entry: dict[str, Any], *, named: bool) -> dict[str, Any]:
    """The entry as JSON: how many people it disclosed, and (for a person's request) that person's id alone — not
    the ids of everyone else an agency received in the same answer."""
    shown = {name: value.isoformat() if isinstance(value, datetime) else value for name, value in entry.items()}
    ids = shown.pop("record_ids")
    return shown | {"record_count": len(ids)} | ({"record_ids": ids} if named else {})
