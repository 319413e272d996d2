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


def redact(
    snapshot: ForeignerSnapshot, allowed: frozenset[str], document: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Only the allowed fields of ``snapshot``, plus the registry's id and version of the record. ``document``
    is ``snapshot.model_dump(mode="json")`` where the caller has it already (once for every agency)."""
    if document is None:
        document = snapshot.model_dump(mode="json")
    record: dict[str, Any] = {"foreigner_id": document["foreigner_id"], "version": document["version"]}
    for name in _in_order(allowed):
        value = _at(document, PATHS[name])
        # Coarsened: the year only, never the date it comes from.
        record[name] = int(value[:4]) if name == "birth_year" and value else value
    return record


@lru_cache(maxsize=1024)
def _in_order(allowed: frozenset[str]) -> tuple[str, ...]:
    """The allowed fields in the order records list them (agreements are few: each set is worked out once)."""
    return tuple(name for name in FIELD_NAMES if name in allowed)


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
