"""What the shipped agreements give the village head of Lajing: the one record shape several tests check."""

from __future__ import annotations

from timpora.sharing.domain import agreements

VILLAGE = agreements.current(agreements.DEFAULTS)["desa-lajing"]
#: A record as the village head gets it: the agreement's fields and the registry's id and version, no more.
VILLAGE_RECORD = frozenset({"foreigner_id", "version"}) | VILLAGE.allowed
