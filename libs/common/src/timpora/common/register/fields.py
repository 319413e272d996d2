"""The fields an agreement can share, as flat names over the registry's foreigner snapshot.

Coarsened fields are fields of their own (``birth_year`` next to ``date_of_birth``), so an
agreement allows exactly the names it lists and nothing is derived from a field it does not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, get_args

from timpora.common.events.payloads import ForeignerSnapshot

FieldName = Literal[
    "full_name",
    "sex",
    "date_of_birth",
    "birth_year",
    "nationality",
    "passport_number",
    "passport_country",
    "passport_expires_on",
    "occupation",
    "sponsor_name",
    "sponsor_kind",
    "residence_address",
    "residence_village_code",
    "residence_since",
    "stay_provider",
    "stay_village_code",
    "stay_check_in",
    "stay_check_out",
    "permit_number",
    "permit_type",
    "permit_purpose",
    "permit_issued_on",
    "permit_expires_on",
    "permit_status",
    "permit_fee_paid_days",
    "visa_index",
    "presence",
    "arrival_port",
    "arrived_on",
    "departure_port",
    "departed_on",
]
FIELD_NAMES: tuple[str, ...] = get_args(FieldName)
#: Where the person lives: withheld from an agency that sees them only as a guest in its area.
RESIDENCE_FIELDS = frozenset({"residence_address", "residence_village_code", "residence_since"})


# Where each field sits in the snapshot's JSON form (dates already ISO strings, enums their values).
PATHS: dict[str, tuple[str, ...]] = {
    "full_name": ("full_name",),
    "sex": ("sex",),
    "date_of_birth": ("date_of_birth",),
    "birth_year": ("date_of_birth",),
    "nationality": ("nationality",),
    "passport_number": ("passport", "number"),
    "passport_country": ("passport", "issuing_country"),
    "passport_expires_on": ("passport", "expires_on"),
    "occupation": ("occupation",),
    "sponsor_name": ("sponsor", "name"),
    "sponsor_kind": ("sponsor", "kind"),
    "residence_address": ("residence", "address"),
    "residence_village_code": ("residence", "village_code"),
    "residence_since": ("residence", "since"),
    "stay_provider": ("stay", "provider"),
    "stay_village_code": ("stay", "village_code"),
    "stay_check_in": ("stay", "check_in"),
    "stay_check_out": ("stay", "check_out"),
    "permit_number": ("permit", "number"),
    "permit_type": ("permit", "type"),
    "permit_purpose": ("permit", "purpose"),
    "permit_issued_on": ("permit", "issued_on"),
    "permit_expires_on": ("permit", "expires_on"),
    "permit_status": ("permit", "status"),
    # The days of an overstay the fee paid settles: what is still due is derived from it.
    "permit_fee_paid_days": ("permit", "overstay_fee", "days_covered"),
    "visa_index": ("visa", "index"),
    "presence": ("presence",),
    "arrival_port": ("arrival", "port"),
    "arrived_on": ("arrival", "on"),
    "departure_port": ("departure", "port"),
    "departed_on": ("departure", "on"),
}
if set(PATHS) != set(FIELD_NAMES):
    raise AssertionError("every shareable field needs exactly one path")


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:  # noqa: ANN401 - JSON values
    value: Any = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


#: The record's ids, ahead of its fields in every record.
_IDS = ("foreigner_id", "version")
#: The fields read straight off the snapshot's top level (``birth_year`` is worked out from ``date_of_birth``).
_TOP = tuple((name, path[0]) for name, path in PATHS.items() if len(path) == 1 and name != "birth_year")
#: The others, grouped by the part of the snapshot they sit in: each part is looked up once, not once per field.
_GROUPS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = tuple(
    (part, tuple((name, path[1:]) for name, path in PATHS.items() if len(path) > 1 and path[0] == part))
    for part in dict.fromkeys(path[0] for path in PATHS.values() if len(path) > 1)
)


def shareable(document: dict[str, Any]) -> dict[str, Any]:
    """Every field an agreement can share of a snapshot, with the record's ids: the values each agreement's record
    is cut from (:func:`cut`). ``document``: the snapshot's JSON form (``model_dump(mode="json")``). Worked out once
    for all the agreements a snapshot reaches, where walking each field's path for each agreement was most of it."""
    values: dict[str, Any] = {key: document[key] for key in _IDS}
    for name, key in _TOP:
        values[name] = document.get(key)
    born = values["date_of_birth"]
    # Coarsened: the year only, never the date it comes from.
    values["birth_year"] = int(born[:4]) if born else born
    for part, members in _GROUPS:
        found = document.get(part)
        if isinstance(found, dict):
            for name, rest in members:
                values[name] = _at(found, rest)
        else:
            for name, _ in members:
                values[name] = None
    return values


def cut(values: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """The record of ``allowed`` from a snapshot's :func:`shareable` values: its ids, then the allowed fields in
    the order records list them (a name that is no field is not in it)."""
    return {name: values[name] for name in _in_order(allowed)}


def redact(
    snapshot: ForeignerSnapshot, allowed: frozenset[str], document: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Only the allowed fields of ``snapshot``, plus the registry's id and version of the record. ``document``
    is ``snapshot.model_dump(mode="json")`` where the caller has it already (once for every agency)."""
    if document is None:
        document = snapshot.model_dump(mode="json")
    return cut(shareable(document), allowed)


@lru_cache(maxsize=1024)
def _in_order(allowed: frozenset[str]) -> tuple[str, ...]:
    """The record's ids and the allowed fields in the order records list them (agreements are few: each set is
    worked out once)."""
    return (*_IDS, *(name for name in FIELD_NAMES if name in allowed))


#: The filters of an agency's list of foreigners (the sharing API's, the portal's), each with the field it reads: an
#: agreement that does not include the field cannot filter on it (a filter would tell what it may not see).
FILTER_FIELDS: dict[str, FieldName] = {
    "name": "full_name",
    "nationality": "nationality",
    "passport": "passport_number",
    "occupation": "occupation",
    "region": "residence_village_code",
    "permit_type": "permit_type",
    "expiring_within_days": "permit_expires_on",
    "overstaying": "permit_expires_on",
    "presence": "presence",
}
