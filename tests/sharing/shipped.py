"""The shipped register as the sharing tests use it: what it gives the village head of Lajing (the one record
shape several tests check), and variants of it written to a file of a test's own (:func:`variant`, on
:mod:`tests.support.register`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support import register as registers
from timpora.common import register
from timpora.common.register.agreements import Agreement

SHIPPED_REGISTER = register.load(register.DEFAULT_REGISTER)
#: Every shipped agreement, by agency id.
SHIPPED: dict[str, Agreement] = SHIPPED_REGISTER.agreements
#: The same, as a list (what ``projection.apply`` takes).
AGREEMENTS: list[Agreement] = list(SHIPPED.values())
VILLAGE = SHIPPED["desa-lajing"]
#: A record as the village head gets it: the agreement's fields and the registry's id and version, no more.
VILLAGE_RECORD = frozenset({"foreigner_id", "version"}) | VILLAGE.allowed
#: What the API adds to a record whose agreement includes the permit's expiry (derived from what it sees).
STANDING = frozenset({"days_to_expiry", "overstaying", "days_overstayed", "deportation_due"})
#: The agencies whose jurisdiction holds Lajing.
COVERING_LAJING = frozenset(agency for agency, agreement in SHIPPED.items() if agreement.covers("35.26.05.2003"))
#: The agencies whose agreement shows only holders of some permit types (someone without such a permit is out of view).
NARROWED = frozenset(agency for agency, agreement in SHIPPED.items() if agreement.permit_types is not None)

_PURPOSE = "Testing the sharing service as a member of TIMPORA, nothing more."
_APPROVER = "Kepala Kantor Imigrasi Kelas II Non TPI Pamekasan"


def variant(
    directory: Path,
    member_id: str | None = None,
    /,
    *,
    member: Mapping[str, Any] | None = None,
    added: Iterable[Mapping[str, Any]] = (),
    name: str = "register.yaml",
    **agreement: Any,
) -> Path:
    """The shipped register with ``agreement``'s changes to the agreement of the member ``member_id`` and
    ``member``'s to the member itself, and the ``added`` members after the shipped ones, written to
    ``directory / name`` (at once: a service reading it sees the file before or after, never half of it).

    Versions are the caller's: changed terms need a new version, or a running service refuses the file
    (the book of a file keeps its register in force) and the service's start refuses an agreement it has
    already recorded under that version with other terms."""
    document = registers.shipped()
    if member_id is not None:
        entry = registers.member(document, member_id)
        entry.update(copy.deepcopy(dict(member or {})))
        if agreement:
            entry["agreement"].update(copy.deepcopy(agreement))
    elif member or agreement:
        raise ValueError("changes need the member they are for")
    document["members"].extend(copy.deepcopy(dict(added_member)) for added_member in added)
    return registers.write(directory / name, document)


def terms(fields: Iterable[str], *, version: int = 1, purpose: str = _PURPOSE, **more: Any) -> dict[str, Any]:
    """An agreement block as the register holds it (no agency, the member's jurisdiction unless ``more`` says)."""
    return {
        "version": version,
        "purpose": purpose,
        "fields": list(fields),
        "event_types": [],
        "valid_from": "2025-01-01",
        "valid_to": "2027-12-31",
        "approved_by": _APPROVER,
        **more,
    }


def own_member(
    agency_id: str, jurisdiction: list[str], agreement: Mapping[str, Any], *, kind: str = "local_government"
) -> dict[str, Any]:
    """A member of a test's own, with ``agreement`` (see :func:`terms`)."""
    return {
        "id": agency_id,
        "name": f"Test agency {agency_id}",
        "kind": kind,
        "jurisdiction": jurisdiction,
        "agreement": dict(agreement),
    }
