"""What the shipped agreements give the village head of Lajing: the one record shape several tests check."""

from __future__ import annotations

from timpora.sharing.domain import agreements

SHIPPED = agreements.current(agreements.DEFAULTS)
VILLAGE = SHIPPED["desa-lajing"]
#: A record as the village head gets it: the agreement's fields and the registry's id and version, no more.
VILLAGE_RECORD = frozenset({"foreigner_id", "version"}) | VILLAGE.allowed
#: What the API adds to a record whose agreement includes the permit's expiry (derived from what it sees).
STANDING = frozenset({"days_to_expiry", "overstaying", "days_overstayed", "deportation_due"})
#: The agencies whose jurisdiction holds Lajing.
COVERING_LAJING = frozenset(agency for agency, agreement in SHIPPED.items() if agreement.covers("35.26.05.2003"))
#: The agencies whose agreement shows only holders of some permit types (someone without such a permit is out of view).
NARROWED = frozenset(agency for agency, agreement in SHIPPED.items() if agreement.permit_types is not None)
