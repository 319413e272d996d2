"""The reports of an agency's meetings over the API: the monthly recap and the foreigners in an area, as JSON
or CSV (see timpora.sharing.reports). Each is written to the disclosure log with the ids of everyone it
counts or lists before it is answered, as the other reads are."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NoReturn
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from timpora.common import regions
from timpora.common.http.deps import Runtime
from timpora.common.http.query import QueryModel
from timpora.sharing import reports
from timpora.sharing.api.deps import AGENCY_RESPONSES, Caller, CurrentCaller
from timpora.sharing.api.routes.foreigners import disclose
from timpora.sharing.reports import AreaList, MonthlyRecap, Presence

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=AGENCY_RESPONSES)


class RecapQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str | None = Field(
        default=None,
        pattern=reports.MONTH_PATTERN,
        description="YYYY-MM by your calendar: a past month, as its last instant was, or the month under way "
        "(the default), as now",
    )
    presence: Presence = Field(
        default="present", description="Whom to count: present people by default, or those who left, or everyone"
    )


class AreaQuery(RecapQuery):
    month: str | None = Field(
        default=None,
        pattern=reports.MONTH_PATTERN,
        description="YYYY-MM by your calendar: the people as they were at that month's end; now if omitted",
    )
    # Checked against the official list by reports.region_refused, whose reason does not repeat the code.
    region: str | None = Field(
        default=None, pattern=regions.CODE_PATTERN, description="Kemendagri code within your jurisdiction"
    )


#: The query strings of the recap and area routes, each given as JSON and as CSV.
RecapParam = Annotated[RecapQuery, Depends(QueryModel(RecapQuery))]
AreaParam = Annotated[AreaQuery, Depends(QueryModel(AreaQuery))]


class FlowsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: str | None = Field(
        default=None,
        pattern=reports.MONTH_PATTERN,
        description="YYYY-MM: the last month shown (the month under way by default)",
    )
    months: int = Field(default=6, ge=1, le=24, description="How many months, ending with ``until``")


def _refuse(field: str, message: str, kind: str) -> NoReturn:
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": ["query", field], "msg": message, "type": kind}]
    )


def _period(caller: Caller, month: str | None, now: datetime, field: str = "month") -> reports.Period:
    try:
        return reports.period(caller.agreement, None if month is None else reports.parse_month(month), now)
    except reports.FutureMonthError as error:
        _refuse(field, str(error), "future_month")


async def _recap(runtime: Runtime, caller: Caller, request: Request, query: RecapQuery) -> MonthlyRecap:
    period = _period(caller, query.month, runtime.clock.now())
    async with runtime.sessions() as session:
        recap, counted = await reports.monthly_recap(
            session, caller.agreement, period, query.presence, rule=runtime.settings.overstay
        )
    await disclose(caller, request, counted, runtime)
    return recap


async def _area(runtime: Runtime, caller: Caller, request: Request, query: AreaQuery) -> AreaList:
    if query.region is not None and (reason := reports.region_refused(caller.agreement, query.region)):
        _refuse("region", reason, "forbidden_region")
    now = runtime.clock.now()
    period = None if query.month is None else _period(caller, query.month, now)
    async with runtime.sessions() as session:
        listed = await reports.area_list(
            session,
            caller.agreement,
            as_of=now if period is None else period.as_of,
            month=None if period is None else period.label,
            region=query.region,
            presence=query.presence,
            rule=runtime.settings.overstay,
        )
    await disclose(caller, request, [UUID(item["foreigner_id"]) for item in listed.items], runtime)
    return listed


def _csv(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/monthly-recap", summary="The monthly recap of your jurisdiction, as your agreement allows")
async def monthly_recap(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    query: RecapParam,
) -> MonthlyRecap:
    return await _recap(runtime, caller, request, query)


@router.get(
    "/monthly-recap.csv",
    summary="The monthly recap as CSV: one row per count (section, kecamatan, nationality, sponsor)",
    response_class=Response,
)
async def monthly_recap_csv(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    query: RecapParam,
) -> Response:
    recap = await _recap(runtime, caller, request, query)
    text = reports.as_csv(reports.RECAP_COLUMNS, reports.recap_rows(recap))
    return _csv(text, f"timpora-recap-{caller.agency_id}-{recap.month}.csv")


@router.get("/monthly-flows", summary="Arrivals and departures per month, for the months before a meeting")
async def monthly_flows(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    query: Annotated[FlowsQuery, Depends(QueryModel(FlowsQuery))],
) -> reports.MonthlyFlows:
    now = runtime.clock.now()
    until = _period(caller, query.until, now, field="until")
    async with runtime.sessions() as session:
        flows, counted = await reports.monthly_flows(session, caller.agreement, until, query.months, now)
    await disclose(caller, request, counted, runtime)
    return flows


@router.get("/area", summary="The foreigners in your area (or a region of it), with region names")
async def area(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    query: AreaParam,
) -> AreaList:
    return await _area(runtime, caller, request, query)


@router.get(
    "/area.csv", summary="The foreigners in your area as CSV (your agreement's fields)", response_class=Response
)
async def area_csv(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    query: AreaParam,
) -> Response:
    listed = await _area(runtime, caller, request, query)
    rows: list[dict[str, Any]] = listed.items
    text = reports.as_csv(reports.area_columns(caller.agreement), rows)
    when = listed.month or caller.agreement.local_date(listed.as_of).isoformat()
    return _csv(text, f"timpora-area-{caller.agency_id}-{when}.csv")
