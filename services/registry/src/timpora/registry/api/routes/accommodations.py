"""Accommodation providers and their guest reports (APOA): the register, reports, and linking the unmatched."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import regions
from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.http.deps import Runtime
from timpora.common.types import RegionCode
from timpora.registry.api.deps import CurrentOperator, OperatorArea, Outcome, Writer
from timpora.registry.api.routes.foreigners import WRITE_RESPONSES
from timpora.registry.domain import accommodations
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.commands import AccommodationIn, LinkIn, StayReportIn

router = APIRouter(prefix="/v1", tags=["accommodations"])


class Accommodation(BaseModel):
    accommodation_id: UUID
    name: str
    address: str
    village_code: str
    village_name: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> Accommodation:
        found = regions.lookup(row.village_code)
        return cls(
            accommodation_id=row.id,
            name=row.name,
            address=row.address,
            village_code=row.village_code,
            village_name=found.name if found else None,
        )


class StayReportOutcome(BaseModel):
    """Matched: the stay is on the guest's record (read it there). Not matched: the report waits for immigration
    to link it. Only ids: a report is no way to look a passport number up."""

    matched: bool
    foreigner_id: UUID | None = None
    stay_id: UUID | None = None
    report_id: UUID | None = None


class UnmatchedReport(BaseModel):
    report_id: UUID
    accommodation_id: UUID
    accommodation_name: str
    village_code: str
    full_name: str
    nationality: str
    passport_number: str
    check_in: date
    check_out: date | None
    planned_check_out: date | None
    reported_by: str
    reported_at: datetime


class LinkedReport(BaseModel):
    foreigner: ForeignerSnapshot
    stay_id: UUID


@router.post(
    "/accommodations",
    status_code=status.HTTP_201_CREATED,
    response_model=Accommodation,
    responses=WRITE_RESPONSES,
    summary="Register an accommodation provider",
)
async def register(command: AccommodationIn, write: Writer) -> Response:
    async def change(session: AsyncSession, context: ChangeContext) -> Outcome:
        row = await accommodations.register(session, context, command)
        return Outcome(status.HTTP_201_CREATED, Accommodation.of(row), 1)

    return await write(change)


@router.get("/accommodations", summary="The registered accommodation providers (in a region, if given)")
async def listed(
    runtime: Runtime, _: CurrentOperator, region: Annotated[RegionCode | None, Query()] = None
) -> list[Accommodation]:
    async with runtime.sessions() as session:
        return [Accommodation.of(row) for row in await accommodations.listed(session, region)]


@router.post(
    "/stay-reports",
    status_code=status.HTTP_201_CREATED,
    response_model=StayReportOutcome,
    responses={202: {"description": "The guest is not in the registry (yet): kept unmatched"}, **WRITE_RESPONSES},
    summary="An accommodation's report of a foreign guest (matched to the registry by passport)",
)
async def report_guest(command: StayReportIn, write: Writer) -> Response:
    async def change(session: AsyncSession, context: ChangeContext) -> Outcome:
        done = await accommodations.report_guest(session, context, command)
        if done.snapshot is None:
            return Outcome(status.HTTP_202_ACCEPTED, StayReportOutcome(matched=False, report_id=done.report_id), 1)
        body = StayReportOutcome(matched=True, foreigner_id=done.snapshot.foreigner_id, stay_id=done.stay_id)
        return Outcome(status.HTTP_201_CREATED, body, done.version)

    return await write(change)


@router.get("/stay-reports", summary="Stay reports of guests not yet linked to a person, oldest first")
async def unmatched(runtime: Runtime, area: OperatorArea) -> list[UnmatchedReport]:
    async with runtime.sessions() as session:
        rows = await accommodations.unmatched(session, area)
    return [
        UnmatchedReport(
            report_id=row.id, **{k: v for k, v in row._mapping.items() if k in UnmatchedReport.model_fields}
        )
        for row in rows
    ]


@router.post(
    "/stay-reports/{report_id}/link",
    response_model=LinkedReport,
    responses=WRITE_RESPONSES,
    summary="Link an unmatched stay report to the person it was about (it becomes their stay)",
)
async def link(report_id: UUID, command: LinkIn, write: Writer) -> Response:
    async def change(session: AsyncSession, context: ChangeContext) -> Outcome:
        snapshot, stay_id = await accommodations.link(session, context, report_id, command)
        return Outcome(status.HTTP_200_OK, LinkedReport(foreigner=snapshot, stay_id=stay_id), snapshot.version)

    return await write(change)
