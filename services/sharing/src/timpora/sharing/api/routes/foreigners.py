"""What an agency may read: the foreigners in its jurisdiction, with the fields of its agreement.

Every read is written to the disclosure log (timpora.common.disclosures) before it is answered; if the log
cannot be written the read is refused (503) and nothing is returned. Only rows stored under the agreement in
force are read, and each is filtered through it again as it is served. Filters on a field outside the agreement are
refused, records are ordered by the registry's opaque id (never by a field the agency cannot see),
and a record outside the agency's view answers exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import regions
from timpora.common.db.compiled import CompiledQuery
from timpora.common.db.engine import direct
from timpora.common.disclosures import Basis, Channel, Disclosure
from timpora.common.events.payloads import PresenceStatus
from timpora.common.http import disclosing
from timpora.common.http.deps import Runtime
from timpora.common.http.errors import described
from timpora.common.http.query import QueryModel
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.fields import FIELD_NAMES, FILTER_FIELDS
from timpora.common.settings import narrow
from timpora.common.spreadsheets import DictWriter
from timpora.common.standing import OPEN, OVERSTAYABLE, local_today_sql
from timpora.common.types import Nationality, RegionCode, Typed
from timpora.sharing.access import KEYS, PORTAL_KEYS
from timpora.sharing.api.deps import AGENCY_RESPONSES, Caller, CurrentCaller, agreement_in_force
from timpora.sharing.domain.derived import ANY_PRESENCE, status_columns, with_status
from timpora.sharing.models import projection_history, projections
from timpora.sharing.settings import SharingSettings

router = APIRouter(prefix="/v1", tags=["foreigners"], responses=AGENCY_RESPONSES)

# Which agreement field each filter reads: a filter is only offered on what the agency may see.


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Free text is any character but NUL (PostgreSQL's text cannot hold it: a query with one would fail, not refuse).
    name: Typed | None = Field(default=None, min_length=2, max_length=100, description="Part of the name")
    nationality: Nationality | None = None
    passport: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9]{5,20}$", description="A passport number, exactly (either case)"
    )
    occupation: Typed | None = Field(default=None, max_length=200)
    region: RegionCode | None = Field(default=None, description="Kemendagri code: it and everything under it")
    permit_type: Typed | None = Field(default=None, max_length=20)
    expiring_within_days: int | None = Field(default=None, ge=0, le=3650)
    overstaying: bool | None = None
    presence: Literal["present", "departed", "deported", "deceased", "any"] = Field(
        default="present", description="Who is counted: present people by default, or those who left, or everyone"
    )
    limit: int = Field(default=50, ge=1, le=500)
    cursor: UUID | None = Field(default=None, description="next_cursor of the previous page")


#: The filters of a request's query string (the export's and the statistics').
FiltersParam = Annotated[Filters, Depends(QueryModel(Filters))]


class ListFilters(Filters):
    fields: str | None = Field(
        default=None,
        max_length=1000,
        pattern=r"^[a-z_]+(,[a-z_]+)*$",
        description="Only these of your agreement's fields, comma-separated: the others are neither given nor "
        "recorded as disclosed (a list shows a few columns; the person's page shows the rest). With "
        "permit_expires_on, what the days to expiry and the overstay are derived from comes too",
    )


#: What the days to expiry and the overstay are derived from (timpora.sharing.domain.derived), beside the expiry.
_DERIVED_FROM = ("presence", "permit_status", "permit_fee_paid_days")
_DERIVED = frozenset({"days_to_expiry", "overstaying", "days_overstayed", "overstay_fee_due_idr", "deportation_due"})


def _wanted(caller: Caller, filters: ListFilters) -> frozenset[str] | None:
    """The fields a list discloses (None: all the agreement's): those it asks for, refused (422) if one is not the
    agreement's, and those its filters reveal (a list of overstayers tells of each that they overstay; every list
    tells whether people are present, which it filters on by default)."""
    if filters.fields is None:
        return None
    wanted = set(filters.fields.split(","))
    outside = wanted - caller.agreement.allowed
    if outside:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", "fields"], "msg": "not a field of your agreement", "type": "forbidden_field"}],
        )
    filtered = {FILTER_FIELDS[name] for name in filters.model_fields_set & set(FILTER_FIELDS)} | {"presence"}
    wanted |= filtered & caller.agreement.allowed
    if "permit_expires_on" in wanted:
        wanted |= {name for name in _DERIVED_FROM if name in caller.agreement.allowed}
    return frozenset(wanted)


def _narrowed(item: dict[str, Any], wanted: frozenset[str] | None) -> dict[str, Any]:
    if wanted is None:
        return item
    derived = _DERIVED if "permit_expires_on" in wanted else frozenset()
    return {name: value for name, value in item.items() if name in wanted or name in RECORD_IDS or name in derived}


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: UUID | None


def _field(name: str) -> ColumnElement[str]:
    field: ColumnElement[str] = projections.c.record[name].astext
    return field


def _expiry() -> ColumnElement[date]:
    return cast(_field("permit_expires_on"), Date)


def _holding(statuses: frozenset[str]) -> ColumnElement[bool]:
    """Present, on a permit of one of ``statuses`` (see timpora.common.standing)."""
    return and_(
        _field("presence") == PresenceStatus.PRESENT.value,
        _field("permit_status").in_(sorted(statuses)),
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """Which filters a request gives (not their values): the statement's shape, built and compiled once each."""

    #: The names its values are bound under (see :func:`_filter_values`).
    bound: frozenset[str]
    #: The one filter whose value chooses the statement itself rather than a parameter of it.
    overstaying: bool | None

    @classmethod
    def of(cls, filters: Filters, values: dict[str, object]) -> _Shape:
        return cls(frozenset(values), filters.overstaying)


def _escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '/' (SQLAlchemy's ``autoescape``, for a bound value)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _filter_values(filters: Filters, now: datetime) -> dict[str, object]:
    """The values of ``filters``, by the names :func:`_conditions` binds them under."""
    values: dict[str, object] = {}
    if filters.expiring_within_days is not None or filters.overstaying is not None:
        values["now"] = now
    if filters.presence != ANY_PRESENCE:
        values["presence"] = filters.presence
    if filters.name:
        values["name"] = _escaped(filters.name)
    if filters.nationality:
        values["nationality"] = filters.nationality
    if filters.passport:
        values["passport"] = filters.passport.upper()
    if filters.occupation:
        values["occupation"] = filters.occupation
    if filters.region:
        values["region"] = filters.region
        values["region_below"] = _escaped(filters.region + ".")
    if filters.permit_type:
        values["permit_type"] = filters.permit_type
    if filters.expiring_within_days is not None:
        values["within_days"] = filters.expiring_within_days
    return values


def _bound(name: str) -> BindParameter[str]:
    # A placeholder value: a statement is compiled before any request's values (timpora.common.db.compiled).
    return bindparam(name, "", type_=String)


@functools.cache
def _conditions(shape: _Shape) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a request's filters, each value a bind parameter (see :func:`_filter_values`)."""
    # Days are counted on each person's own local date, as the registry counts them.
    today = local_today_sql(bindparam("now", datetime.now(UTC), type_=DateTime(timezone=True)), projections.c.time_zone)
    conditions: list[ColumnElement[bool]] = []
    if "presence" in shape.bound:
        conditions.append(_field("presence") == _bound("presence"))
    if "name" in shape.bound:
        conditions.append(_field("full_name").icontains(_bound("name"), escape="/"))
    if "nationality" in shape.bound:
        conditions.append(_field("nationality") == _bound("nationality"))
    if "passport" in shape.bound:
        conditions.append(func.upper(_field("passport_number")) == _bound("passport"))
    if "occupation" in shape.bound:
        conditions.append(_field("occupation") == _bound("occupation"))
    if "region" in shape.bound:
        village = _field("residence_village_code")
        conditions.append(or_(village == _bound("region"), village.startswith(_bound("region_below"), escape="/")))
    if "permit_type" in shape.bound:
        conditions.append(_field("permit_type") == _bound("permit_type"))
    if "within_days" in shape.bound:
        expires = _expiry()
        within = bindparam("within_days", 0, type_=Integer)
        conditions.append(and_(_holding(OPEN), expires >= today, expires <= today + within))
    if shape.overstaying is not None:
        overstaying = and_(_holding(OVERSTAYABLE), _expiry() < today)
        # Someone without a permit, or who left, is simply not overstaying (never NULL, never both).
        conditions.append(overstaying if shape.overstaying else not_(func.coalesce(overstaying, false())))
    return tuple(conditions)


def _refuse_filters_outside(caller: Caller, filters: Filters) -> None:
    for name in sorted(filters.model_fields_set & set(FILTER_FIELDS)):
        if FILTER_FIELDS[name] not in caller.agreement.allowed:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [
                    {
                        "loc": ["query", name],
                        "msg": f"your agreement does not include {FILTER_FIELDS[name]}",
                        "type": "forbidden_filter",
                    }
                ],
            )


async def disclose(
    caller: Caller, request: Request, record_ids: list[UUID], runtime: Runtime, *, fields: Iterable[str] | None = None
) -> None:
    """Records the answer about to be given; raises 503 (and nothing is disclosed) if the log cannot be written."""
    await disclosing.record(
        runtime,
        [
            Disclosure(
                agency_id=caller.agency_id,
                channel=Channel.API,
                reference=f"{request.method} {request.url.path}",
                key_id=caller.key.key_id,
                officer=caller.officer,
                query=dict(request.query_params),
                record_ids=record_ids,
                fields=sorted(caller.agreement.allowed if fields is None else fields),
                basis=Basis.AGREEMENT,
                purpose=caller.agreement.purpose,
                agreement_version=caller.agreement.version,
                disclosed_at=runtime.clock.now(),
            )
        ],
    )


#: The rows a caller may read (see :func:`_visible_values`): rows stored under another version of the agreement wait for
#: the rebuild that follows every change.
_VISIBLE = (
    projections.c.agency_id == _bound("agency_id"),
    projections.c.visible.is_(True),
    projections.c.agreement_version == bindparam("agreement_version", 0, type_=Integer),
)


def _visible_values(caller: Caller) -> dict[str, object]:
    return {"agency_id": caller.agency_id, "agreement_version": caller.agreement.version}


@functools.cache
def _listing(shape: _Shape) -> CompiledQuery:
    """The list's statement for filters of ``shape`` (after a cursor or from the start), compiled once."""
    cursor = bindparam("cursor", UUID(int=0), type_=projections.c.foreigner_id.type)
    return CompiledQuery.of(
        select(projections.c.foreigner_id, projections.c.record, projections.c.time_zone)
        .where(
            *_VISIBLE, *_conditions(shape), *([projections.c.foreigner_id > cursor] if "cursor" in shape.bound else [])
        )
        .order_by(projections.c.foreigner_id)
        .limit(bindparam("limit", 1, type_=Integer))
    )


@router.get("/foreigners", summary="The foreigners in your jurisdiction, with your agreement's fields")
async def list_foreigners(
    runtime: Runtime,
    caller: CurrentCaller,
    request: Request,
    filters: Annotated[ListFilters, Depends(QueryModel(ListFilters))],
) -> Page:
    _refuse_filters_outside(caller, filters)
    wanted = _wanted(caller, filters)
    now = runtime.clock.now()
    values = {**_visible_values(caller), **_filter_values(filters, now), "limit": filters.limit}
    if filters.cursor is not None:
        values["cursor"] = filters.cursor
    listing = _listing(_Shape.of(filters, values))
    # One statement, one round trip: no transaction is opened around it (timpora.common.db.compiled).
    async with direct(runtime.engine) as connection:
        rows = await listing.fetch(connection, values)
    ids = [row["foreigner_id"] for row in rows]
    await disclose(caller, request, ids, runtime, fields=wanted)
    next_cursor = ids[-1] if len(rows) == filters.limit else None
    # Built from rows the service wrote itself; FastAPI still serialises it through the response model.
    return Page.model_construct(
        items=[_narrowed(_served(caller, row["record"], row["time_zone"], now, runtime), wanted) for row in rows],
        next_cursor=next_cursor,
    )


@router.get(
    "/foreigners/{foreigner_id}",
    summary="One foreigner in your jurisdiction",
    responses={404: described("Not in your view (or not at all: the two are not told apart)")},
)
async def get_foreigner(
    runtime: Runtime, caller: CurrentCaller, request: Request, foreigner_id: UUID
) -> dict[str, Any]:
    statement = select(projections.c.record, projections.c.time_zone).where(
        *_VISIBLE, projections.c.foreigner_id == foreigner_id
    )
    async with runtime.sessions() as session:
        row = (await session.execute(statement, _visible_values(caller))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such foreigner in your view")
    await disclose(caller, request, [foreigner_id], runtime)
    return _served(caller, row.record, row.time_zone, runtime.clock.now(), runtime)


class HistoryEntry(BaseModel):
    version: int = Field(description="The registry's version of the person after this change")
    event_type: str | None = Field(
        description="The news (e.g. 'permit.extended'); null for news your agreement does not list, that changed "
        "your fields all the same"
    )
    occurred_at: datetime
    changed: dict[str, Any] = Field(
        description="Your agreement's fields this change set (null: no longer given); when the person came into your "
        "view, all of them"
    )
    entered_view: bool = Field(default=False, description="The person came into your view with this change")
    left_view: bool = Field(default=False, description="The person left your view with this change (no fields)")


class History(BaseModel):
    entries: list[HistoryEntry]
    #: Nothing older is told: the agreement's start (its ``valid_from``, at midnight where the agency is).
    since: datetime


@router.get(
    "/foreigners/{foreigner_id}/history",
    summary="One foreigner's history in your view under your agreement: what changed, and the news it lists",
    responses={404: described("Not in your view (or not at all: the two are not told apart)")},
)
async def get_history(runtime: Runtime, caller: CurrentCaller, request: Request, foreigner_id: UUID) -> History:
    """What the agency may know of the person's past under the agreement in force, and no more: each change since
    the agreement's own start (``valid_from``: a rebuild writes history from the first event, but what happened
    before the agency had an agreement is not its to read), while the person was in its view, with the agreement's
    fields that changed; when they came into the view and left it; what kind of news it was only where the agreement
    lists that news (its topic's events). Disclosed, and recorded, as a read."""
    in_view = select(projections.c.foreigner_id).where(*_VISIBLE, projections.c.foreigner_id == foreigner_id)
    # The agreement's own start, at midnight where the agency is: what happened before it is not the agency's to read.
    since = datetime.combine(caller.agreement.valid_from, time(), regions.time_zone(caller.agreement.jurisdiction[0]))
    async with runtime.sessions() as session:
        if (await session.execute(in_view, _visible_values(caller))).first() is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such foreigner in your view")
        rows = (await session.execute(_history_of(caller, foreigner_id))).all()
    entries = _told(caller, rows, since)
    fields = {name for entry in entries for name in entry.changed}
    # Coming into the view and leaving it tell where the person is, as presence does.
    await disclose(
        caller, request, [foreigner_id], runtime, fields=sorted(fields | ({"presence"} if entries else set()))
    )
    return History(entries=entries, since=since)


def _history_of(caller: Caller, foreigner_id: UUID) -> Select[Any]:
    return (
        select(
            projection_history.c.version,
            projection_history.c.event_type,
            projection_history.c.occurred_at,
            projection_history.c.visible,
            projection_history.c.record,
        )
        .where(
            projection_history.c.agency_id == caller.agency_id,
            projection_history.c.foreigner_id == foreigner_id,
            projection_history.c.agreement_version == caller.agreement.version,
        )
        .order_by(projection_history.c.version)
    )


def _told(caller: Caller, rows: Sequence[Any], since: datetime) -> list[HistoryEntry]:
    """The entries from ``since`` on. The rows before it are walked, not told: they say where the person stood when
    the agreement took effect (in the view or not, and what it showed), so that what is told after is what changed
    from then, never a value from before."""
    entries: list[HistoryEntry] = []
    told: dict[str, Any] | None = None  # what the agency knows of the person now; None: not in its view
    for row in rows:
        if row.occurred_at < since:
            told = _as_served(caller, row) if row.visible else None
            continue
        listed = row.event_type in caller.agreement.event_types
        kind = row.event_type if listed else None  # what kind of news, only where the agreement lists it
        if not row.visible:
            if told is not None:
                entries.append(HistoryEntry(version=row.version, event_type=kind, occurred_at=row.occurred_at,
                                            changed={}, left_view=True))  # fmt: skip
            told = None
            continue
        record = _as_served(caller, row)
        entering, before = told is None, told or {}
        # In the fields' own order (the stored record's is JSONB's); a field no longer given is told as null, and a
        # field first told empty is no change.
        changed = {
            name: record.get(name)
            for name in FIELD_NAMES
            if (name in record or name in before) and before.get(name) != record.get(name)
        }
        told = record
        if listed or changed or entering:
            entries.append(HistoryEntry(version=row.version, event_type=kind, occurred_at=row.occurred_at,
                                        changed=changed, entered_view=entering))  # fmt: skip
    return entries


def _as_served(caller: Caller, row: Any) -> dict[str, Any]:  # noqa: ANN401 - a row
    return {name: value for name, value in caller.agreement.served(row.record).items() if name not in RECORD_IDS}


def _served(caller: Caller, record: dict[str, Any], time_zone: str, now: datetime, runtime: Runtime) -> dict[str, Any]:
    return with_status(caller.agreement.served(record), time_zone, now, runtime.settings.overstay)


class AgreementView(BaseModel):
    agency_id: str
    agency_name: str
    version: int
    purpose: str
    jurisdiction: list[str]
    fields: list[str]
    event_types: list[str]
    valid_from: date
    valid_to: date | None
    approved_by: str


@router.get("/agreement", summary="Your data-sharing agreement: what you may see, and why")
async def my_agreement(caller: CurrentCaller) -> AgreementView:
    return AgreementView.model_validate(caller.agreement.model_dump())


async def _disclosed_pages(
    runtime: Runtime,
    caller: Caller,
    request: Request,
    filters: Filters,
    now: datetime,
    *,
    fields: Iterable[str],
    columns: Sequence[ColumnElement[Any]],
) -> AsyncGenerator[list[Any], None]:
    """Every record the filters match, a page at a time, each page in the disclosure log before it is yielded.

    A 100,000-row export by one agency must not hold up another agency's reads, so nothing here is held across
    pages: each page is read in a short transaction of its own (no snapshot, connection or lock kept while the
    client reads), by keyset on the opaque id, and its disclosure is one small append to the log, gathered with
    the concurrent requests' records (one append of every id at once would hold the log's lock, and every
    other request's record behind it, for as long as writing 100,000 ids takes). The first page is disclosed even
    if it is empty: an empty answer is an answer, and logged as one. Each row is the foreigner's id and
    ``columns``."""
    size = narrow(runtime.settings, SharingSettings).export_page_rows
    values = _visible_values(caller) | _filter_values(filters, now)
    conditions = [*_VISIBLE, *_conditions(_Shape.of(filters, values))]
    after: UUID | None = None
    while True:
        statement = (
            select(projections.c.foreigner_id, *columns)
            .where(*conditions, *([] if after is None else [projections.c.foreigner_id > after]))
            .order_by(projections.c.foreigner_id)
            .limit(size)
        )
        async with runtime.sessions() as session:
            if after is not None and not await _still_entitled(runtime, session, caller):
                # The agreement ended, changed or the member left, or the key was revoked, while the client was
                # still reading: what was already sent was disclosed in force; nothing more is.
                raise ExportCutShortError
            rows = list((await session.execute(statement, values)).all())
        if rows or after is None:
            await disclose(caller, request, [row.foreigner_id for row in rows], runtime, fields=fields)
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].foreigner_id


class ExportCutShortError(Exception):
    """An export's caller is no longer entitled to the next page: the stream ends there (the connection is cut, so
    the client sees an incomplete answer, not a short one that looks whole)."""


async def _still_entitled(runtime: Runtime, session: AsyncSession, caller: Caller) -> bool:
    """The caller as :func:`get_caller` would see it now: its key in force, its member in the register, the same
    agreement version in force today. A long export is re-checked before each page."""
    agreement = agreement_in_force(runtime, caller.agency_id)
    if agreement is None or agreement.version != caller.agreement.version:
        return False
    return await (KEYS if caller.officer is None else PORTAL_KEYS).active(session, caller.key.key_id)


#: Rows formatted between two turns of the event loop. Formatting is CPU work in the one event loop that serves
#: every agency: a whole page of 1,000 rows at once would hold every other request for tens of milliseconds, and
#: another agency's read, which waits on the loop a dozen times, for that many times as long. Measured
#: (bench/sharing_export.py): 50 rows at a time slowed the other agency's reads 2.3x, 10 rows not measurably,
#: at the same export rate.
_CHUNK_ROWS = 10


def _chunks(rows: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(rows), _CHUNK_ROWS):
        yield rows[start : start + _CHUNK_ROWS]


@router.get(
    "/foreigners.csv",
    summary="Everything the filters match, as CSV (your agreement's fields as columns)",
    description="Streamed in pages; each page is in the disclosure log before it is sent. If the log cannot be "
    "written the answer is 503 before anything is sent, or, past the first page, the connection is cut before "
    "the end of the body, so a partial file never looks complete.",
    response_class=StreamingResponse,
)
async def export_csv(
    runtime: Runtime, caller: CurrentCaller, request: Request, filters: FiltersParam
) -> StreamingResponse:
    _refuse_filters_outside(caller, filters)
    now = runtime.clock.now()
    columns = ["foreigner_id", "version", *(name for name in FIELD_NAMES if name in caller.agreement.allowed)]
    columns += status_columns(caller.agreement)
    # The record as text, parsed as each row is formatted: decoding a whole page's JSON at once, as the driver
    # would, holds the event loop (and every other agency's request) for tens of milliseconds.
    record = cast(projections.c.record, Text).label("record")
    pages = _disclosed_pages(
        runtime,
        caller,
        request,
        filters,
        now,
        fields=caller.agreement.allowed,
        columns=[record, projections.c.time_zone],
    )
    # The first page is read and disclosed before the answer begins: a log that cannot be written is a 503.
    first = await anext(pages)

    def text(rows: list[Any], *, header: bool = False) -> str:
        buffer = io.StringIO()
        writer = DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(_served(caller, json.loads(row.record), row.time_zone, now, runtime) for row in rows)
        return buffer.getvalue()

    async def body() -> AsyncIterator[str]:
        try:
            yield text(first[:_CHUNK_ROWS], header=True)
            for rows in _chunks(first[_CHUNK_ROWS:]):
                await asyncio.sleep(0)
                yield text(rows)
            async for page in pages:
                for rows in _chunks(page):
                    await asyncio.sleep(0)
                    yield text(rows)
        finally:
            await pages.aclose()

    filename = f"timpora-{caller.agency_id}-{caller.agreement.local_date(now).isoformat()}.csv"
    return StreamingResponse(
        body(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


# Dimensions of the statistics and the field each needs; a dimension is only counted when the
# agreement includes its field. District = the first three parts of the residence's village code.
DIMENSIONS = {
    "nationality": "nationality",
    "occupation": "occupation",
    "district": "residence_village_code",
    "permit_status": "permit_status",
    "permit_type": "permit_type",
    "presence": "presence",
}


class Statistics(BaseModel):
    total: int
    by: dict[str, dict[str, int]]


@router.get("/statistics", summary="Counts for dashboards, on the dimensions your agreement includes")
async def statistics(runtime: Runtime, caller: CurrentCaller, request: Request, filters: FiltersParam) -> Statistics:
    _refuse_filters_outside(caller, filters)
    counted = {dimension: field for dimension, field in DIMENSIONS.items() if field in caller.agreement.allowed}
    # Counted a page at a time, as the export reads: bounded memory, each page disclosed, nothing held between.
    total, counts = 0, {dimension: Counter[str]() for dimension in counted}
    # Only the counted fields, as text: no record is decoded, and a page is counted in a millisecond or two.
    columns = [_field(field).label(dimension) for dimension, field in counted.items()]
    now = runtime.clock.now()
    try:
        async for rows in _disclosed_pages(
            runtime, caller, request, filters, now, fields=counted.values(), columns=columns
        ):
            total += len(rows)
            for dimension in counted:
                for row in rows:
                    value = getattr(row, dimension)
                    tally = "unknown" if value is None else value[:8] if dimension == "district" else value
                    counts[dimension][tally] += 1
    except ExportCutShortError:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "no data-sharing agreement or key in force for this agency any more"
        ) from None
    return Statistics(total=total, by={dimension: dict(sorted(tally.items())) for dimension, tally in counts.items()})
