"""Schemathesis hooks of the OpenAPI conformance runs (tests/edges/test_openapi_conformance.py), loaded with
``SCHEMATHESIS_HOOKS=tests.support.conformance``.

Schemathesis' own ``positive_data_acceptance`` wants every request valid by the schema accepted. Some rules no
JSON Schema can state: a date after another field's (described at the field), a code on the official Kemendagri
list (a pattern can only say its shape), a rule about the records as they stand (a stay report for an
accommodation nobody registered), a cursor only the API makes, a key used before for another request. This check
replaces it: a schema-valid request may be refused (422) only for one of these, each named here, and every other
refusal of a schema-valid request is a failure — a rule the schema hides.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.generation.case import Case

#: Fields that carry a rule across fields, described in the field's own schema (tests/edges: each names its field).
CROSS_FIELD = frozenset(
    {
        "arrived_on",
        "previous_passport_number",
        "renewed_on",
        "expires_on",
        "provider",
        "village_code",
        "check_out",
        "planned_check_out",
        "until",
        "leave_by",
        "purpose",
    }
)
#: Codes checked against an official list; the schema gives their shape and says which list.
OFFICIAL_LISTS = frozenset({"nationality", "issuing_country", "village_code", "region"})
#: Values only the API makes or the caller's own history decides, described at the parameter.
OPAQUE = frozenset({("query", "cursor"), ("query", "after"), ("header", "Idempotency-Key")})
#: The registry's rules about the records as they stand, which its 422 describes.
RECORD_RULE = "value_error.registry"
#: The sharing service's rules about the caller's agreement and calendar: a filter or region outside it, a month
#: not begun, a field the agreement does not give (docs/agencies.md, "The sharing API"); each names its parameter.
AGREEMENT_RULES = frozenset({"forbidden_filter", "forbidden_field", "forbidden_region", "future_month"})


def _described(problem: dict[str, Any]) -> bool:
    loc = [str(part) for part in problem.get("loc", [])]
    kind = problem.get("type")
    if len(loc) < 2:
        return False
    where, field = loc[0], loc[-1]
    if (where, field) in OPAQUE:
        return True
    # A rule about the record as it stands names the field it is about, in the body or the path (an action for a
    # person who has left is refused at the person's id): which records exist is no schema's to say.
    if (where in {"body", "path"} and kind == RECORD_RULE) or (where == "query" and kind in AGREEMENT_RULES):
        return True
    if kind != "value_error":
        return False  # a pydantic check of the field's own: the schema states those, so it must have passed
    return field in CROSS_FIELD or field in OFFICIAL_LISTS


@schemathesis.check
def refused_only_for_described_reasons(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    del ctx
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in {400, 422}:
        return None
    try:
        problems = response.json().get("detail")
    except ValueError:
        problems = None
    if not isinstance(problems, list):
        raise AssertionError(  # noqa: TRY004 - schemathesis reports an AssertionError as the check's failure
            f"a schema-valid request was refused ({response.status_code}) without naming a field"
        )
    hidden = [(problem.get("loc"), problem.get("type")) for problem in problems if not _described(problem)]
    if hidden:
        raise AssertionError(f"a schema-valid request was refused for a reason its schema hides: {hidden}")
    return True
