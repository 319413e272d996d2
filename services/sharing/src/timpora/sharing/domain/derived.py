"""What a record shows beyond its agreement's fields: derived from fields the agency already sees, the same
in the API, the CSV exports and the reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from timpora.common.register.agreements import Agreement
from timpora.common.settings import OverstaySettings
from timpora.common.standing import overstay, standing

#: Everyone in the agency's view, whatever their presence.
ANY_PRESENCE = "any"


def status_columns(agreement: Agreement) -> list[str]:
    """The derived columns a record of this agreement gets (see :func:`with_status`)."""
    if "permit_expires_on" not in agreement.allowed:
        return []
    fee = ["overstay_fee_due_idr"] if "permit_fee_paid_days" in agreement.allowed else []
    return ["days_to_expiry", "overstaying", "days_overstayed", *fee, "deportation_due"]


def with_status(record: dict[str, Any], time_zone: str, now: datetime, rule: OverstaySettings) -> dict[str, Any]:
    """Adds what is derived from fields the agency already sees (presence, the permit's status and expiry):
    days to expiry and the overstay, on the person's local date. Someone who left is not overstaying. Past
    the days a fee can settle (UU 6/2011 art. 78), deportation is due; the fee still due is shown only to
    an agency that also sees what was paid, since without it the figure could be wrong."""
    if "permit_expires_on" not in record:
        return record
    expires = record["permit_expires_on"]
    today = now.astimezone(ZoneInfo(time_zone)).date()
    found = standing(
        record.get("presence"), record.get("permit_status"), date.fromisoformat(expires) if expires else None, today
    )
    owed = (
        overstay(found.days_overstayed, rule, days_paid=record.get("permit_fee_paid_days") or 0)
        if found.days_overstayed
        else None
    )
    fee = {"overstay_fee_due_idr": owed.fee_due_idr if owed else None} if "permit_fee_paid_days" in record else {}
    return record | {
        "days_to_expiry": found.days_to_expiry,
        "overstaying": found.overstaying,
        "days_overstayed": found.days_overstayed,
        **fee,
        "deportation_due": owed.deportation_due if owed else False,
    }
