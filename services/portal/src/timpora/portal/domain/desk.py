"""Immigration's desk, as forms: each change of the office's daily work (a permit issued, extended, converted or
revoked; a residence reported; a departure; the overstay's fee, a deportation order, the deportation, a re-entry
ban) is a form whose fields map onto the registry's request body, field by field. The registry is the one judge of
what is right: the form only says what is missing, and shows the registry's own words beside the field they name."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from timpora.common.events.payloads import EnforcementAction, PermitType, StayPurpose


class Kind(StrEnum):
    TEXT = "text"
    DATE = "date"
    NUMBER = "number"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a form: its name in the form, where the registry's body has it (dotted: ``sponsor.name``)."""

    name: str
    path: str
    kind: Kind = Kind.TEXT
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """A change the desk makes: its form (``fields``) and where it is sent, under ``/v1/foreigners/{id}``."""

    name: str
    path: str
    fields: tuple[Field, ...]
    #: Made on the person's current permit (its id in ``path``): offered only while they have one.
    on_permit: bool = False

    def target(self, foreigner_id: str, permit_id: str | None) -> str:
        return f"/v1/foreigners/{foreigner_id}{self.path.format(permit_id=permit_id)}"

    def missing(self, values: Mapping[str, str]) -> dict[str, str]:
        return {field.name: "desk.required" for field in self.fields if field.required and not values.get(field.name)}

    def body(self, values: Mapping[str, str]) -> dict[str, Any]:
        """The registry's request from the form: what was left empty is left out (the registry names what it needs);
        a number stays as typed when it is not one (the registry then says so, beside its field)."""
        body: dict[str, Any] = {}
        for field in self.fields:
            value: Any = values.get(field.name, "")
            if not value:
                continue
            if field.kind is Kind.NUMBER:
                value = int(value) if value.isdigit() else value
            *parents, leaf = field.path.split(".")
            at = body
            for parent in parents:
                at = at.setdefault(parent, {})
            at[leaf] = value
        return body

    def paths(self) -> dict[str, str]:
        return {field.name: field.path for field in self.fields}


_PERMIT_TYPES = tuple(kind.value for kind in PermitType if kind is not PermitType.VISA_ON_ARRIVAL)
_PURPOSES = tuple(purpose.value for purpose in StayPurpose)
_PERMIT = (
    Field("number", "number"),
    Field("type", "type", Kind.CHOICE, choices=_PERMIT_TYPES),
    Field("purpose", "purpose", Kind.CHOICE, required=False, choices=_PURPOSES),
    Field("issued_on", "issued_on", Kind.DATE),
    Field("expires_on", "expires_on", Kind.DATE),
    Field("sponsor_name", "sponsor.name", required=False),
    Field("sponsor_kind", "sponsor.kind", required=False),
)

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("permit", "/permits", _PERMIT),
        Action(
            "extension",
            "/permits/{permit_id}/extension",
            (Field("expires_on", "expires_on", Kind.DATE),),
            on_permit=True,
        ),
        Action(
            "conversion",
            "/permits/{permit_id}/conversion",
            tuple(
                Field("type", "type", Kind.CHOICE, choices=("itas", "itap")) if field.name == "type" else field
                for field in _PERMIT
            ),
            on_permit=True,
        ),
        Action("revocation", "/permits/{permit_id}/revocation", (Field("reason", "reason"),), on_permit=True),
        Action(
            "overstay-fee",
            "/permits/{permit_id}/overstay-fee",
            (
                Field("amount_idr", "amount_idr", Kind.NUMBER),
                Field("receipt_number", "receipt_number"),
                Field("paid_on", "paid_on", Kind.DATE),
            ),
            on_permit=True,
        ),
        Action(
            "residence",
            "/residence",
            (
                Field("residence_address", "address"),
                Field("residence_village_code", "village_code"),
                Field("residence_since", "since", Kind.DATE),
            ),
        ),
        Action("departure", "/departure", (Field("port", "port"), Field("departed_on", "departed_on", Kind.DATE))),
        Action(
            "enforcement",
            "/enforcement",
            (
                Field("action", "action", Kind.CHOICE, choices=tuple(action.value for action in EnforcementAction)),
                Field("on", "on", Kind.DATE),
                Field("reference", "reference"),
            ),
        ),
        Action(
            "deportation",
            "/deportation",
            (Field("port", "port"), Field("deported_on", "deported_on", Kind.DATE), Field("reference", "reference")),
        ),
        Action(
            "ban",
            "/ban",
            (Field("since", "since", Kind.DATE), Field("until", "until", Kind.DATE), Field("reference", "reference")),
        ),
    )
}


#: A form's attempt (hex, as the page made it) and a recorded person's or permit's id, as a form may send them back.
ATTEMPT = re.compile(r"[0-9a-f]{32}")
RECORD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def attempt_of(form: Mapping[str, str]) -> str:
    """The form's attempt as the page made it, or a new one for a form that is not one of ours."""
    attempt = form.get("attempt", "")
    return attempt if ATTEMPT.fullmatch(attempt) else uuid.uuid4().hex


def said(message: str) -> str:
    """The registry's (pydantic's) words, without the prefix that says which kind of check made them."""
    return "said:" + message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def registry_problems(answer: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The registry's refusal (422, 409), field by field: each message beside the form field it names; what names no
    field of the form (the person, the permit in the path, the record as a whole) is the form's message."""
    by_path = {path: name for name, path in fields.items()}
    problems: dict[str, str] = {}
    general: str | None = None
    details = answer.get("detail", [])
    for detail in details if isinstance(details, list) else [{"msg": str(details)}]:
        location = [str(part) for part in detail.get("loc", [])]
        inside = location[1:] if location[:1] == ["body"] else []
        name = by_path.get(".".join(inside)) or (by_path.get(inside[0]) if inside else None)
        if name is None:
            general = general or said(str(detail.get("msg", "")))
        else:
            problems.setdefault(name, said(str(detail.get("msg", ""))))
    return problems, general


def idempotency_key(attempt: str, what: str, body: Mapping[str, Any]) -> dict[str, str]:
    """One Idempotency-Key per form and content: the same form sent again replays the registry's first answer; a
    corrected one is a new request."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return {"Idempotency-Key": f"portal-{attempt}-{what}-{digest}"}
