"""Immigration's desk: the office's daily work in the registry, through its API, under the officer's own name (the
registry records "officer (portal)" as who changed what, in the office's area alone). So far: recording an arrival,
with the residence the person reports, so that they are on the agencies' lists within seconds.

What the registry refuses comes back beside the field it names, in its own words, with everything typed kept. A
residence that cannot be right (not a village of the official list, or outside the office's area) is refused here
before anything is sent, by the same check the registry makes: an arrival is never recorded without the residence
that was typed with it. A form sent twice (a double click, a reload) records the arrival once (Idempotency-Key)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import TypeAdapter, ValidationError

from timpora.common import regions, register
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.common.types import VillageCode
from timpora.portal.api.deps import (
    ImmigrationOfficer,
    ReadyOfficer,
    Registry,
    answered,
    checked_form,
    form_page,
    refusal,
)
from timpora.portal.domain.desk import RECORD_ID, attempt_of, idempotency_key, registry_problems
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import UpstreamUnavailableError
from timpora.portal.web import render, same_token

router = APIRouter(include_in_schema=False)

#: The form's fields, in the order shown, each with where the registry's answer names it (``ArrivalIn``,
#: ``ResidenceIn``): a refusal of ``passport.number`` is shown beside ``passport_number``.
ARRIVAL_FIELDS: dict[str, str] = {
    "full_name": "full_name",
    "sex": "sex",
    "date_of_birth": "date_of_birth",
    "nationality": "nationality",
    "passport_number": "passport.number",
    "passport_country": "passport.issuing_country",
    "passport_expires_on": "passport.expires_on",
    "occupation": "occupation",
    "sponsor_name": "sponsor.name",
    "sponsor_kind": "sponsor.kind",
    "port": "port",
    "arrived_on": "arrived_on",
    "visa_index": "visa.index",
}
RESIDENCE_FIELDS: dict[str, str] = {
    "residence_address": "address",
    "residence_village_code": "village_code",
    "residence_since": "since",
}
REQUIRED = (
    "full_name",
    "sex",
    "date_of_birth",
    "nationality",
    "passport_number",
    "passport_country",
    "passport_expires_on",
    "port",
    "arrived_on",
)
DATES = frozenset({"date_of_birth", "passport_expires_on", "arrived_on", "residence_since"})
_VILLAGE = TypeAdapter(VillageCode)
#: The registry's refusals that name a field: invalid (422), or in conflict with the record (409: already present).
_REFUSED_BY_FIELD = frozenset({status.HTTP_422_UNPROCESSABLE_CONTENT, status.HTTP_409_CONFLICT})


def _page(
    request: Request,
    officer: ReadyOfficer,
    *,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    code: int = 200,
) -> Response:
    return form_page(
        request,
        officer,
        "arrival.html",
        title="desk.arrival",
        values=_with_signature(officer, values or {"attempt": uuid.uuid4().hex}),
        problems=problems,
        message=message,
        code=code,
        fields=[*ARRIVAL_FIELDS, *RESIDENCE_FIELDS],
        dates=DATES,
        required=REQUIRED,
    )


def _with_signature(officer: ReadyOfficer, values: dict[str, str]) -> dict[str, str]:
    recorded = values.get("foreigner_id")
    return values | {"foreigner_sig": _signed(officer, recorded)} if recorded else values


@router.get("/desk/arrivals/new")
async def new_arrival(request: Request, officer: ImmigrationOfficer) -> Response:
    return _page(request, officer)


def _arrival(values: dict[str, str]) -> dict[str, Any]:
    """The registry's ``ArrivalIn`` from the form: what was left empty is left out (the registry names what it
    needs)."""
    body: dict[str, Any] = {
        name: values[name]
        for name in ("full_name", "sex", "date_of_birth", "nationality", "occupation", "port", "arrived_on")
        if values[name]
    }
    body["passport"] = {
        key: values[f"passport_{name}"]
        for key, name in (("number", "number"), ("issuing_country", "country"), ("expires_on", "expires_on"))
        if values[f"passport_{name}"]
    }
    if values["sponsor_name"] or values["sponsor_kind"]:
        body["sponsor"] = {"name": values["sponsor_name"], "kind": values["sponsor_kind"]}
    if values["visa_index"]:
        body["visa"] = {"index": values["visa_index"]}
    return body


def _residence(values: dict[str, str]) -> dict[str, Any] | None:
    if not any(values[name] for name in RESIDENCE_FIELDS):
        return None
    return {
        "address": values["residence_address"],
        "village_code": values["residence_village_code"],
        # Since the arrival, unless another day is given.
        "since": values["residence_since"] or values["arrived_on"],
    }


def _local_problems(values: dict[str, str], office_area: list[str]) -> dict[str, str]:
    problems = {name: "desk.required" for name in REQUIRED if not values[name]}
    residence = _residence(values)
    if residence is None:
        return problems
    if not residence["address"]:
        problems["residence_address"] = "desk.required"
    try:
        _VILLAGE.validate_python(residence["village_code"])
    except ValidationError:
        problems["residence_village_code"] = "desk.unknown_village"
    else:
        if not regions.is_within_any(residence["village_code"], office_area):
            problems["residence_village_code"] = "desk.outside_area"
    return problems


def _signed(officer: ReadyOfficer, foreigner_id: str) -> str:
    """``foreigner_id`` signed with the session's own secret (its CSRF token, never sent anywhere but its forms)."""
    return hmac.new(officer.csrf_token.encode(), foreigner_id.encode(), hashlib.sha256).hexdigest()


@router.post("/desk/arrivals")
async def record_arrival(
    runtime: Runtime, request: Request, officer: ImmigrationOfficer, registry: Registry
) -> Response:
    form = await checked_form(request, officer)
    values = {name: form.get(name, "").strip() for name in (*ARRIVAL_FIELDS, *RESIDENCE_FIELDS)}
    values["nationality"] = values["nationality"].upper()
    values["passport_country"] = values["passport_country"].upper()
    values["attempt"] = attempt_of(form)
    # Set once the arrival is recorded and only its residence is left to correct (the arrival is then read-only);
    # signed for this session, so that a form cannot be edited to send a residence for someone else.
    recorded = form.get("foreigner_id", "")
    if recorded and not (
        RECORD_ID.fullmatch(recorded) and same_token(_signed(officer, recorded), form.get("foreigner_sig"))
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    values["foreigner_id"] = recorded
    office = register.current(narrow(runtime.settings, PortalSettings).register_file).members.get(officer.agency_id)
    area = list(office.jurisdiction) if office is not None else []
    if problems := _local_problems(values, area):
        return _page(request, officer, values=values, problems=problems, code=422)
    try:
        return await _record(request, officer, registry, values)
    except UpstreamUnavailableError:
        # Nothing typed is lost: the form comes back as it was, to send again once the registry answers.
        return _page(request, officer, values=values, message="desk.unavailable", code=503)


async def _record(request: Request, officer: ReadyOfficer, registry: Registry, values: dict[str, str]) -> Response:
    matched = False
    if values["foreigner_id"]:
        person: dict[str, Any] = {"foreigner_id": values["foreigner_id"]}
    else:
        arrived = await _arrive(request, officer, registry, values)
        if isinstance(arrived, Response):
            return arrived
        person, matched = arrived
    residence = _residence(values)
    if residence is not None:
        lived = await _live(
            request, officer, registry, values | {"foreigner_id": str(person["foreigner_id"])}, residence
        )
        if isinstance(lived, Response):
            return lived
        person = lived
    elif values["foreigner_id"]:
        return _page(request, officer, values=values, problems={"residence_village_code": "desk.required"}, code=422)
    return render(
        request,
        "arrival_done.html",
        status_code=status.HTTP_200_OK if matched or values["foreigner_id"] else status.HTTP_201_CREATED,
        title="desk.arrival_done",
        officer=officer,
        csrf=officer.csrf_token,
        person=person,
        matched=matched,
        residence_only=bool(values["foreigner_id"]),
    )


async def _arrive(
    request: Request, officer: ReadyOfficer, registry: Registry, values: dict[str, str]
) -> tuple[dict[str, Any], bool] | Response:
    """The arrival recorded (the person, and whether they were matched to a record), or the page that says why not."""
    arrival = _arrival(values)
    answer = await registry.request(
        "POST", "/v1/arrivals", officer, json=arrival, headers=idempotency_key(values["attempt"], "arrival", arrival)
    )
    if answer.status_code in _REFUSED_BY_FIELD:
        problems, general = registry_problems(answer.json(), ARRIVAL_FIELDS)
        return _page(request, officer, values=values, problems=problems, message=general, code=answer.status_code)
    if answer.status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        return _page(request, officer, values=values, message="desk.unavailable", code=503)
    if answer.status_code not in {status.HTTP_200_OK, status.HTTP_201_CREATED}:
        return refusal(request, answer, "desk.arrival")
    person: dict[str, Any] = answer.json()
    return person, answer.status_code == status.HTTP_200_OK


async def _live(
    request: Request, officer: ReadyOfficer, registry: Registry, kept: dict[str, str], residence: dict[str, Any]
) -> dict[str, Any] | Response:
    """The residence recorded (the person as they now are), or the page that says why not. The arrival stands by now:
    whatever becomes of the residence, the form keeps the person's id (signed), the arrival read-only above it, and
    sends the residence alone next time."""
    try:
        lived = await registry.request(
            "POST",
            f"/v1/foreigners/{kept['foreigner_id']}/residence",
            officer,
            json=residence,
            headers=idempotency_key(kept["attempt"], "residence", residence),
        )
    except UpstreamUnavailableError:
        return _page(request, officer, values=kept, message="desk.residence_unavailable", code=503)
    if lived.status_code in _REFUSED_BY_FIELD:
        problems, general = registry_problems(lived.json(), RESIDENCE_FIELDS)
        return _page(
            request,
            officer,
            values=kept,
            problems=problems,
            message=general if general and not problems else "desk.arrival_kept",
            code=lived.status_code,
        )
    if lived.status_code != status.HTTP_200_OK:
        return _page(request, officer, values=kept, message="desk.residence_unavailable", code=503)
    person: dict[str, Any] = lived.json()
    return person


@router.get("/desk/worklist")
async def worklist(request: Request, officer: ImmigrationOfficer, registry: Registry) -> Response:
    """The office's overstays, longest first (the band says whether the fee settles it or deportation is due), and
    the permits ending within 30 days, soonest first."""
    region = request.query_params.get("region", "").strip()
    params: dict[str, Any] = {"expiring_within_days": 30} | ({"region": region} if region else {})
    read = answered(
        request,
        await registry.get("/v1/worklist", officer, params),
        "desk.worklist",
        invalid=lambda _: {"region": "problem.region"},
    )
    if isinstance(read, Response):
        return read
    found, problems = read
    found = found or {"overstaying": [], "expiring": [], "truncated": False}
    return render(
        request,
        "worklist.html",
        status_code=422 if problems else 200,
        title="desk.worklist",
        officer=officer,
        csrf=officer.csrf_token,
        region=region,
        problems=problems,
        overstaying=found["overstaying"],
        expiring=found["expiring"],
        truncated=found["truncated"],
    )
