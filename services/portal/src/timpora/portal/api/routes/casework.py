"""Immigration's casework: finding a person of the office's area (by passport number or name), their whole record
as the registry holds it (the office is its controller: nothing is withheld, and reading it is processing, not a
disclosure), and the changes the desk makes to it, each a form (timpora.portal.domain.desk).

Every change is sent with the record's version the officer saw (If-Match): if someone changed the person in the
meantime, nothing is recorded and the form comes back, everything typed kept, with the record as it now is. A form
sent twice records once (Idempotency-Key); what the registry refuses is shown beside the field it names. A person of
another office's area is "not found", as a person who does not exist."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.fields import FIELD_NAMES, redact
from timpora.common.standing import OVERSTAYABLE
from timpora.portal.api.deps import (
    ImmigrationOfficer,
    ReadyOfficer,
    Registry,
    answered,
    checked_form,
    found_id,
    refusal,
)
from timpora.portal.domain.desk import (
    ACTIONS,
    RECORD_ID,
    Action,
    attempt_of,
    idempotency_key,
    registry_problems,
)
from timpora.portal.upstream import UpstreamUnavailableError
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)

_VERSION = re.compile(r"[0-9]{1,9}")
#: Everything the registry holds, in the order the agencies' records list it (the birth year is the date's).
_ALL_FIELDS = frozenset(FIELD_NAMES) - {"birth_year"}
#: The registry's refusals that are about what was typed: invalid (422), or in conflict with the record (409).
_REFUSED = frozenset({status.HTTP_422_UNPROCESSABLE_CONTENT, status.HTTP_409_CONFLICT})
#: A search by name needs this much of it (the registry's own minimum through the portal).
_NAME_AT_LEAST = 3


@router.get("/desk/foreigners")
async def search(request: Request, officer: ImmigrationOfficer, registry: Registry) -> Response:
    """The office's people whose passport number is, or whose name contains, what was typed (the departed too:
    immigration keeps them all)."""
    passport = request.query_params.get("passport", "").strip()
    name = request.query_params.get("name", "").strip()
    problems: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    if name and len(name) < _NAME_AT_LEAST:
        problems["name"] = "problem.name3"
    elif passport or name:
        params = {"limit": 50} | ({"passport_number": passport} if passport else {}) | ({"name": name} if name else {})
        field = "passport" if passport else "name"
        read = answered(
            request,
            await registry.get("/v1/foreigners", officer, params),
            "desk.search",
            invalid=lambda _: {field: "problem.name3" if field == "name" else "problem.passport"},
        )
        if isinstance(read, Response):
            return read
        page, problems = read
        items = page["items"] if page else []
    return render(
        request,
        "casework_search.html",
        status_code=422 if problems else 200,
        title="desk.search",
        officer=officer,
        csrf=officer.csrf_token,
        passport=passport,
        name_typed=name,
        searched=bool(passport or name) and not problems,
        problems=problems,
        items=items,
    )


async def _record(request: Request, officer: ReadyOfficer, registry: Registry, foreigner_id: str) -> dict[str, Any]:
    """The person's record (with its standing and history) as the registry holds it; "not found" for a person who is
    not the office's, or is no one."""
    person_id = found_id(foreigner_id)
    answer = await registry.get(f"/v1/foreigners/{person_id}", officer)
    if answer.status_code in {status.HTTP_404_NOT_FOUND, status.HTTP_422_UNPROCESSABLE_CONTENT}:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    if answer.status_code != status.HTTP_200_OK:
        raise _Refused(refusal(request, answer, "desk.person_record"))
    record: dict[str, Any] = answer.json()
    return record


class _Refused(Exception):  # noqa: N818 - carries the page, as Redirect does
    """The registry gave no record (no key, away, too many requests): this page instead."""

    def __init__(self, page: Response) -> None:
        super().__init__("refused")
        self.page = page


#: A permit's states in which it can still be extended, converted, revoked or have its overstay's fee paid: those its
#: present holder can overstay.
_OPEN_PERMIT = frozenset(permit_status.value for permit_status in OVERSTAYABLE)


def _offered(record: dict[str, Any]) -> list[Action]:
    """The changes that can be made to the record as it is: for someone no longer here, a re-entry ban alone; a
    permit's changes only while its permit is still open (not revoked, not ended)."""
    snapshot = record["foreigner"]
    if snapshot.get("presence") != "present":
        return [ACTIONS["ban"]]
    permit = snapshot.get("permit")
    open_permit = permit is not None and permit.get("status") in _OPEN_PERMIT
    return [action for action in ACTIONS.values() if open_permit or not action.on_permit]


@router.get("/desk/foreigners/{foreigner_id}")
async def person(request: Request, officer: ImmigrationOfficer, registry: Registry, foreigner_id: str) -> Response:
    try:
        record = await _record(request, officer, registry, foreigner_id)
    except _Refused as refused:
        return refused.page
    snapshot = record["foreigner"]
    fields = redact(ForeignerSnapshot.model_validate(snapshot), _ALL_FIELDS, document=snapshot)
    done = request.query_params.get("done", "")
    return render(
        request,
        "casework_person.html",
        title="desk.person_record",
        officer=officer,
        csrf=officer.csrf_token,
        person=snapshot,
        fields=[(name, value) for name, value in fields.items() if name not in RECORD_IDS],
        standing=record["standing"],
        history=list(reversed(record["history"])),
        actions=_offered(record),
        done=done if done in ACTIONS else None,
    )


def _form(
    request: Request,
    officer: ReadyOfficer,
    action: Action,
    record: dict[str, Any],
    *,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    code: int = 200,
) -> Response:
    """The form of ``action`` on ``record``. A new form is about the record as the page shows it (its version and
    permit); a form sent back keeps the version and permit it was filled in against, so that a record changed since
    is still caught (If-Match) when it is sent again."""
    snapshot = record["foreigner"]
    permit = snapshot.get("permit") or {}
    seen = {"version": str(snapshot.get("version", "")), "permit_id": str(permit.get("permit_id", ""))}
    kept = seen | (values or {"attempt": uuid.uuid4().hex})
    history = record.get("history") or []
    return render(
        request,
        "casework_action.html",
        status_code=code,
        title=f"desk.action.{action.name}",
        officer=officer,
        csrf=officer.csrf_token,
        action=action,
        person={"full_name": None, "permit": None} | snapshot,
        last_change=history[-1] if history else None,
        values=kept,
        problems=problems or {},
        message=message,
    )


def _action(name: str, record: dict[str, Any]) -> Action:
    action = ACTIONS.get(name)
    if action is None or action not in _offered(record):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return action


@router.get("/desk/foreigners/{foreigner_id}/{action_name}")
async def action_form(
    request: Request, officer: ImmigrationOfficer, registry: Registry, foreigner_id: str, action_name: str
) -> Response:
    if action_name not in ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    try:
        record = await _record(request, officer, registry, foreigner_id)
    except _Refused as refused:
        return refused.page
    return _form(request, officer, _action(action_name, record), record)


@router.post("/desk/foreigners/{foreigner_id}/{action_name}")
async def act(
    request: Request, officer: ImmigrationOfficer, registry: Registry, foreigner_id: str, action_name: str
) -> Response:
    form = await checked_form(request, officer)
    if action_name not in ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    action = ACTIONS[action_name]
    values = {field.name: form.get(field.name, "").strip() for field in action.fields}
    version, permit_id = form.get("version", ""), form.get("permit_id", "")
    values["attempt"] = attempt_of(form)
    # What the form was filled in against; a form that is not one of ours says nothing (and is refused below).
    values["version"] = version if _VERSION.fullmatch(version) else ""
    values["permit_id"] = permit_id if RECORD_ID.fullmatch(permit_id) else ""
    try:
        record = await _record(request, officer, registry, foreigner_id)
    except _Refused as refused:
        return refused.page
    except UpstreamUnavailableError:
        unknown = {"foreigner": {"foreigner_id": str(found_id(foreigner_id))}}
        return _form(request, officer, action, unknown, values=values, message="desk.not_answered", code=503)
    action = _action(action_name, record)
    if problems := action.missing(values):
        return _form(request, officer, action, record, values=values, problems=problems, code=422)
    if not values["version"] or (action.on_permit and not values["permit_id"]):
        return _form(request, officer, action, record, values=values | _seen(record), message="desk.changed", code=409)
    return await _send(request, officer, registry, action, record, values)


def _seen(record: dict[str, Any]) -> dict[str, str]:
    """The record's version and permit, as a form just opened on it has them."""
    snapshot = record["foreigner"]
    permit = snapshot.get("permit") or {}
    return {"version": str(snapshot["version"]), "permit_id": str(permit.get("permit_id", ""))}


async def _send(  # noqa: PLR0917 - one request's parts, each already checked
    request: Request,
    officer: ReadyOfficer,
    registry: Registry,
    action: Action,
    record: dict[str, Any],
    values: dict[str, str],
) -> Response:
    foreigner_id = record["foreigner"]["foreigner_id"]
    body = action.body(values)
    try:
        answer = await registry.request(
            "POST",
            # The permit the officer saw (a conversion sent twice names the first permit both times, and is replayed).
            action.target(foreigner_id, values["permit_id"] or None),
            officer,
            json=body,
            # The version the officer saw: if anyone changed the person since, the registry records nothing (412).
            headers={"If-Match": f'"{values["version"]}"'} | idempotency_key(values["attempt"], action.name, body),
        )
    except UpstreamUnavailableError:
        # Perhaps recorded, perhaps not: sent again, the same form is recorded once either way (Idempotency-Key).
        return _form(request, officer, action, record, values=values, message="desk.not_answered", code=503)
    if answer.status_code in _REFUSED:
        problems, general = registry_problems(_json(answer), action.paths())
        if not (problems or general):  # not the registry's own answer (a proxy's page)
            return _form(request, officer, action, record, values=values, message="desk.not_answered", code=503)
        return _form(
            request, officer, action, record, values=values, problems=problems, message=general, code=answer.status_code
        )
    if answer.status_code == status.HTTP_412_PRECONDITION_FAILED:
        return await _changed(request, officer, registry, action, foreigner_id, values)
    if answer.status_code == status.HTTP_404_NOT_FOUND:
        raise HTTPException(status.HTTP_404_NOT_FOUND)  # no longer the office's (moved away), or no such permit
    if answer.status_code not in {status.HTTP_200_OK, status.HTTP_201_CREATED}:
        return refusal(request, answer, f"desk.action.{action.name}")
    # Recorded: the person's page, which a reload does not send again.
    return RedirectResponse(
        f"/desk/foreigners/{foreigner_id}?done={action.name}", status_code=status.HTTP_303_SEE_OTHER
    )


async def _changed(  # noqa: PLR0917 - the refused request's parts
    request: Request,
    officer: ReadyOfficer,
    registry: Registry,
    action: Action,
    foreigner_id: str,
    values: dict[str, str],
) -> Response:
    """Changed since the officer opened the form (412): nothing was recorded. They see the record as it now is, with
    what they typed, and decide again. (A form sent twice is not this: the registry replays the first answer of an
    Idempotency-Key before it compares versions.)"""
    try:
        fresh = await _record(request, officer, registry, foreigner_id)
    except _Refused as refused:
        return refused.page
    return _form(request, officer, action, fresh, values=values | _seen(fresh), message="desk.changed", code=409)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
