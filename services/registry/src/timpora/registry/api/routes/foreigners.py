"""Foreigners: arrivals, reads and searches, residence and stay reports, departures, details."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events.payloads import ForeignerSnapshot, PermitStatus, PresenceStatus
from timpora.common.http.deps import Runtime
from timpora.common.http.errors import FieldErrors, described
from timpora.common.http.query import QueryModel
from timpora.common.standing import local_today, overstay, standing
from timpora.common.types import Nationality, RegionCode
from timpora.registry import repository as repo
from timpora.registry.api.deps import CurrentOperator, OperatorArea, Outcome, Reads, Writer, etag
from timpora.registry.api.models import (
    ForeignerPage,
    ForeignerRecord,
    HistoryEntry,
    Standing,
    StayRecorded,
    WorkItem,
    Worklist,
)
from timpora.registry.domain import changes
from timpora.registry.domain.areas import known_place
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.commands import (
    ArrivalIn,
    CheckOutIn,
    DepartureIn,
    ForeignerPatch,
    PassportRenewalIn,
    ResidenceIn,
    StayIn,
)
from timpora.registry.domain.errors import InvalidChangeError, NotFoundError

router = APIRouter(prefix="/v1", tags=["foreigners"])

# 401, 413 and 429 are every authenticated write's, added to the document for all (timpora.common.http.errors).
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: described("No such foreigner (or permit, or stay)", FieldErrors),
    409: described("The change collides with the record as it is", FieldErrors),
    412: described("If-Match named an old version", FieldErrors),
    422: described(
        "A field breaks a rule — of its own, across fields (described at the field), or about the record as it "
        "stands (a departure before the arrival, a permit for someone who left); `detail` names the field",
        FieldErrors,
    ),
}


@router.post(
    "/arrivals",
    status_code=status.HTTP_201_CREATED,
    response_model=ForeignerSnapshot,
    responses={200: {"description": "Matched an existing foreigner by nationality + passport"}, **WRITE_RESPONSES},
    summary="Record an arrival",
)
async def record_arrival(command: ArrivalIn, write: Writer) -> Response:
    async def change(session: AsyncSession, context: ChangeContext) -> Outcome:
        snapshot, created = await changes.record_arrival(session, context, command)
        return Outcome(status.HTTP_201_CREATED if created else status.HTTP_200_OK, snapshot, snapshot.version)

    return await write(change)


@router.get(
    "/foreigners/{foreigner_id}",
    summary="One foreigner, with the history of every change",
    responses={404: described("No such foreigner", FieldErrors)},
)
async def get_foreigner(
    foreigner_id: UUID, runtime: Runtime, area: OperatorArea, reads: Reads, response: Response
) -> ForeignerRecord:
    async with runtime.sessions() as session:
        snapshot = await repo.load_snapshot(session, foreigner_id)
        if area is not None and not area.holds(known_place(snapshot)):
            # Another office's person: not found, exactly as a missing one.
            raise NotFoundError("no such foreigner", field=("path", "foreigner_id"))
        entries = await repo.load_history(session, foreigner_id)
    await reads.record([foreigner_id])
    response.headers["ETag"] = etag(snapshot.version)
    return ForeignerRecord(
        foreigner=snapshot,
        standing=_standing(snapshot, runtime),
        history=[HistoryEntry.model_validate(entry, from_attributes=True) for entry in entries],
    )


def _standing(snapshot: ForeignerSnapshot, runtime: Runtime) -> Standing:
    """Days to expiry, or the overstay with the fee still due (UU 6/2011 art. 78), on the person's local date."""
    permit = snapshot.permit
    place = (
        snapshot.residence.village_code if snapshot.residence else snapshot.stay.village_code if snapshot.stay else None
    )
    found = standing(
        snapshot.presence.value,
        permit.status.value if permit else None,
        permit.expires_on if permit else None,
        local_today(runtime.clock, place),
    )
    if found.days_overstayed is None or permit is None:
        return Standing(days_to_expiry=found.days_to_expiry)
    paid = permit.overstay_fee.days_covered if permit.overstay_fee else 0
    rule = runtime.settings.overstay
    return Standing(days_to_expiry=found.days_to_expiry, overstay=overstay(found.days_overstayed, rule, days_paid=paid))


def _encode_cursor(snapshot: ForeignerSnapshot) -> str:
    # The last row's id only: a cursor travels in URLs, proxy logs and browser history, and must not carry a name.
    # The name it continues after is read from the database (repo.search).
    return base64.urlsafe_b64encode(snapshot.foreigner_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> UUID:
    try:
        return UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidChangeError("cursor is not one this API returned", field=("query", "cursor")) from None


class ForeignerFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=100, description="Part of the name")
    nationality: Nationality | None = None
    passport_number: str | None = Field(default=None, max_length=20)
    region: RegionCode | None = Field(default=None, description="Kemendagri code; matches it and everything under it")
    permit_status: PermitStatus | None = None
    presence: PresenceStatus | None = Field(default=None, description="Everyone by default: immigration keeps them all")
    expiring_within_days: int | None = Field(
        default=None, ge=0, le=3650, description="Present people whose open permit expires by then (their local date)"
    )
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


@router.get("/foreigners", summary="Search foreigners (keyset pagination by name)")
async def search_foreigners(
    runtime: Runtime,
    operator: CurrentOperator,
    area: OperatorArea,
    reads: Reads,
    filters: Annotated[ForeignerFilters, Depends(QueryModel(ForeignerFilters))],
) -> ForeignerPage:
    if operator.via_portal:
        _one_person_at_a_time(filters)
    async with runtime.sessions() as session:
        items = await repo.search(
            session,
            name=filters.name,
            nationality=filters.nationality,
            passport_number=filters.passport_number.strip().upper() if filters.passport_number else None,
            region=filters.region,
            permit_status=filters.permit_status.value if filters.permit_status else None,
            presence=filters.presence.value if filters.presence else None,
            expiring_within_days=filters.expiring_within_days,
            now=runtime.clock.now(),
            after=_decode_cursor(filters.cursor) if filters.cursor else None,
            limit=filters.limit,
            area=area,
        )
    next_cursor = _encode_cursor(items[-1]) if len(items) == filters.limit else None
    await reads.record([item.foreigner_id for item in items])
    return ForeignerPage(items=items, next_cursor=next_cursor)


#: The most a search through the portal's key returns: a page of people found by passport or name, not the register.
PORTAL_SEARCH_LIMIT = 50
PORTAL_NAME_AT_LEAST = 3
#: The most each of the worklist's lists holds through the portal (the office's page shows 200).
PORTAL_WORKLIST_LIMIT = 200


def _one_person_at_a_time(filters: ForeignerFilters) -> None:
    """The portal's officers look a person up by passport number or name; they do not page through the office's
    register (a portal key stolen would otherwise read every office's people, every field, page by page)."""
    if not (filters.passport_number or filters.name):
        raise InvalidChangeError("give a passport number or a name", field=("query", "passport_number"))
    if filters.name is not None and len(filters.name.strip()) < PORTAL_NAME_AT_LEAST:
        raise InvalidChangeError(
            f"give at least {PORTAL_NAME_AT_LEAST} letters of the name through the portal", field=("query", "name")
        )
    for other in ("nationality", "region", "permit_status", "presence", "expiring_within_days"):
        # Narrowing by anything but who the person is would make the lookup a listing of the register.
        if getattr(filters, other) is not None:
            raise InvalidChangeError("the portal looks a person up by passport or name alone", field=("query", other))
    if filters.limit > PORTAL_SEARCH_LIMIT:
        raise InvalidChangeError(f"at most {PORTAL_SEARCH_LIMIT} through the portal", field=("query", "limit"))
    if filters.cursor is not None:
        raise InvalidChangeError("the portal's search is not paged: give more of the name", field=("query", "cursor"))


class WorklistQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expiring_within_days: int = Field(default=30, ge=0, le=365, description="Permits ending within this many days")
    region: RegionCode | None = Field(default=None, description="Only this Kemendagri region (a kecamatan, a village)")
    limit: int = Field(default=200, ge=1, le=500, description="The most shown in each list")


@router.get("/worklist", summary="Your office's overstays (longest first) and the permits ending soonest")
async def worklist(
    runtime: Runtime,
    operator: CurrentOperator,
    area: OperatorArea,
    reads: Reads,
    query: Annotated[WorklistQuery, Depends(QueryModel(WorklistQuery))],
) -> Worklist:
    if operator.via_portal and query.limit > PORTAL_WORKLIST_LIMIT:
        raise InvalidChangeError(f"at most {PORTAL_WORKLIST_LIMIT} through the portal", field=("query", "limit"))
    now = runtime.clock.now()
    found: dict[bool, list[ForeignerSnapshot]] = {}
    async with runtime.sessions() as session:
        for overstaying in (True, False):
            found[overstaying] = await repo.search(
                session,
                name=None,
                nationality=None,
                passport_number=None,
                region=query.region,
                permit_status=None,
                presence=None,
                expiring_within_days=None if overstaying else query.expiring_within_days,
                overstaying=overstaying,
                by_expiry=True,
                now=now,
                after=None,
                limit=query.limit + 1,
                area=area,
            )
    over = [WorkItem(foreigner=person, standing=_standing(person, runtime)) for person in found[True][: query.limit]]
    soon = [WorkItem(foreigner=person, standing=_standing(person, runtime)) for person in found[False][: query.limit]]
    await reads.record([item.foreigner.foreigner_id for item in (*over, *soon)])
    return Worklist(
        overstaying=sorted(
            over, key=lambda item: -(item.standing.overstay.days_overstayed if item.standing.overstay else 0)
        ),
        expiring=sorted(
            soon, key=lambda item: item.standing.days_to_expiry if item.standing.days_to_expiry is not None else 0
        ),
        truncated=any(len(people) > query.limit for people in found.values()),
    )


@router.patch(
    "/foreigners/{foreigner_id}",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Change occupation or sponsor",
)
async def update_details(foreigner_id: UUID, command: ForeignerPatch, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.update_details(session, context, foreigner_id, command)
    )


@router.post(
    "/foreigners/{foreigner_id}/passport",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record a passport renewal (the person stays the same; the old number stays findable)",
)
async def renew_passport(foreigner_id: UUID, command: PassportRenewalIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.renew_passport(session, context, foreigner_id, command)
    )


@router.post(
    "/foreigners/{foreigner_id}/residence",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Report a residence address",
)
async def report_residence(foreigner_id: UUID, command: ResidenceIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.report_residence(session, context, foreigner_id, command)
    )


@router.post(
    "/foreigners/{foreigner_id}/stays",
    status_code=status.HTTP_201_CREATED,
    response_model=StayRecorded,
    responses=WRITE_RESPONSES,
    summary="Report an accommodation stay (check-in)",
)
async def report_stay(foreigner_id: UUID, command: StayIn, write: Writer) -> Response:
    async def change(session: AsyncSession, context: ChangeContext) -> Outcome:
        snapshot, stay_id = await changes.report_stay(session, context, foreigner_id, command)
        return Outcome(status.HTTP_201_CREATED, StayRecorded(foreigner=snapshot, stay_id=stay_id), snapshot.version)

    return await write(change)


@router.post(
    "/foreigners/{foreigner_id}/stays/{stay_id}/check-out",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Report a check-out",
)
async def check_out(foreigner_id: UUID, stay_id: UUID, command: CheckOutIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.check_out(session, context, foreigner_id, stay_id, command)
    )


@router.post(
    "/foreigners/{foreigner_id}/departure",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record a departure",
)
async def record_departure(foreigner_id: UUID, command: DepartureIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.record_departure(session, context, foreigner_id, command)
    )
