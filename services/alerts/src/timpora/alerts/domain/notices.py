"""What an agency is told: one notice per alert, the same on every channel (webhook body, Kafka value, e-mail
text), in Indonesian and English. The person in it is the agency's record under its agreement (the controller's:
everything it holds), exactly what the sharing API would show it, and nothing else; :func:`within` filters a
notice again through the agreement in force when it is sent."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from timpora.common import regions
from timpora.common.events.payloads import ForeignerEvent, PermitExpired, PermitExpiring, PermitOverstayExceeded
from timpora.common.register.agreements import EVENT_NAMES, RECORD_IDS, Agreement, permit_scope
from timpora.common.register.members import Agency

#: What each detail is derived from: the days from the permit's expiry, the fee from the days overstayed and what
#: was paid of them.
_DETAIL_FIELDS = {
    "days_left": frozenset({"permit_expires_on"}),
    "threshold_days": frozenset({"permit_expires_on"}),
    "days_overstayed": frozenset({"permit_expires_on"}),
    "fee_due_idr": frozenset({"permit_expires_on", "permit_fee_paid_days"}),
}
_MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
_VILLAGE_FIELDS = frozenset({"residence_village_code", "stay_village_code"})
_DATE_FIELDS = frozenset(
    {
        "date_of_birth",
        "residence_since",
        "stay_check_in",
        "stay_check_out",
        "permit_issued_on",
        "permit_expires_on",
        "passport_expires_on",
        "arrived_on",
        "departed_on",
    }
)
_ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
#: Where a notice keeps its scope; never sent.
SCOPE = "_scope"
#: The resolution an agency is told when what closed its alert is news its agreement does not cover.
CLOSED = "closed"

# Titles per event type, Indonesian first: {days} is filled from the event.
_TITLES: Mapping[str, tuple[str, str]] = {
    "foreigner.arrived": ("Orang asing tiba di wilayah Anda", "A foreigner arrived in your area"),
    "foreigner.imported": ("Data orang asing dimasukkan", "A foreigner's record was imported"),
    "foreigner.updated": ("Data orang asing berubah", "A foreigner's details changed"),
    "foreigner.residence-reported": ("Laporan tempat tinggal orang asing", "A foreigner's residence was reported"),
    "foreigner.stay-reported": ("Laporan menginap orang asing", "A foreigner's accommodation stay was reported"),
    "foreigner.departed": ("Orang asing telah meninggalkan Indonesia", "A foreigner has left Indonesia"),
    "permit.issued": ("Izin tinggal diterbitkan", "A stay permit was issued"),
    "permit.extended": ("Izin tinggal diperpanjang", "A stay permit was extended"),
    "permit.revoked": ("Izin tinggal dicabut", "A stay permit was revoked"),
    "permit.converted": ("Izin tinggal dialihstatuskan", "A stay permit was converted"),
    "permit.reentry-granted": ("Izin masuk kembali diberikan", "A re-entry permit was granted"),
    "permit.exit-permit-issued": (
        "Izin keluar tidak kembali (EPO): harus meninggalkan Indonesia",
        "Exit permit only: the holder must leave Indonesia",
    ),
    "permit.expiring": ("Izin tinggal berakhir dalam {days} hari", "Stay permit expires in {days} days"),
    "permit.expired": (
        "Overstay: izin tinggal telah berakhir {days} hari lalu",
        "Overstay: the stay permit expired {days} days ago",
    ),
    "permit.overstay-exceeded": (
        "Overstay lebih dari 60 hari ({days} hari): deportasi dan penangkalan",
        "Overstay beyond 60 days ({days} days): deportation and a re-entry ban are due",
    ),
    "permit.overstay-fee-paid": ("Biaya beban overstay telah dibayar", "The overstay fee was paid"),
    "foreigner.enforcement-recorded": ("Tindakan administratif keimigrasian", "Immigration took an action"),
    "foreigner.deported": ("Orang asing telah dideportasi", "A foreigner was deported"),
    "foreigner.banned": ("Penangkalan orang asing", "A re-entry ban was imposed"),
    "foreigner.stay-overdue": (
        "Orang asing belum check-out dari penginapan",
        "A foreign guest has not checked out of the accommodation",
    ),
}
_MESSAGES: Mapping[str, tuple[str, str]] = {
    "alert": ("", ""),
    "resolved": ("Selesai: ", "Resolved: "),
    "escalation": ("Eskalasi, belum ditindaklanjuti: ", "Escalation, not yet acknowledged: "),
}
_LABELS: Mapping[str, tuple[str, str]] = {
    "full_name": ("Nama", "Name"),
    "sex": ("Jenis kelamin", "Sex"),
    "date_of_birth": ("Tanggal lahir", "Date of birth"),
    "birth_year": ("Tahun lahir", "Year of birth"),
    "nationality": ("Kewarganegaraan", "Nationality"),
    "passport_number": ("Nomor paspor", "Passport number"),
    "passport_country": ("Negara penerbit paspor", "Passport issued by"),
    "passport_expires_on": ("Paspor berlaku sampai", "Passport valid until"),
    "occupation": ("Pekerjaan", "Occupation"),
    "sponsor_name": ("Penjamin", "Sponsor"),
    "sponsor_kind": ("Jenis penjamin", "Sponsor kind"),
    "residence_address": ("Alamat", "Address"),
    "residence_village_code": ("Desa/kelurahan tempat tinggal", "Village of residence"),
    "residence_since": ("Tinggal sejak", "Living there since"),
    "stay_provider": ("Penginapan", "Accommodation"),
    "stay_village_code": ("Desa/kelurahan penginapan", "Village of the accommodation"),
    "stay_check_in": ("Check-in", "Check-in"),
    "stay_check_out": ("Check-out", "Check-out"),
    "permit_number": ("Nomor izin tinggal", "Permit number"),
    "permit_type": ("Jenis izin tinggal", "Permit type"),
    "permit_purpose": ("Tujuan izin tinggal", "Permit purpose"),
    "permit_issued_on": ("Izin diterbitkan", "Permit issued on"),
    "permit_expires_on": ("Berlaku sampai", "Valid until"),
    "permit_status": ("Status izin", "Permit status"),
    "permit_fee_paid_days": ("Hari overstay yang dibayar", "Overstay days paid"),
    "visa_index": ("Indeks visa", "Visa index"),
    "presence": ("Keberadaan", "Presence"),
    "arrival_port": ("Tempat masuk", "Port of arrival"),
    "arrived_on": ("Tanggal masuk", "Arrived on"),
    "departure_port": ("Tempat keluar", "Port of departure"),
    "departed_on": ("Tanggal keluar", "Departed on"),
    "foreigner_id": ("ID", "ID"),
}


_DETAIL_LABELS: Mapping[str, tuple[str, str]] = {
    "days_left": ("Sisa hari", "Days left"),
    "threshold_days": ("Pengingat (hari)", "Reminder (days)"),
    "days_overstayed": ("Hari overstay", "Days overstayed"),
    "fee_due_idr": ("Biaya beban terutang (Rp)", "Overstay fee due (IDR)"),
}


def details(data: ForeignerEvent) -> dict[str, int]:
    if isinstance(data, PermitExpiring):
        return {"days_left": data.days_left, "threshold_days": data.threshold_days}
    if isinstance(data, PermitExpired):
        fee = data.overstay.fee_due_idr if data.overstay else None
        return {"days_overstayed": data.days_overstayed} | ({"fee_due_idr": fee} if fee is not None else {})
    if isinstance(data, PermitOverstayExceeded):
        return {"days_overstayed": data.overstay.days_overstayed}
    return {}


#: Titles for an agency whose agreement does not include the permit's expiry, which the days count from.
_UNDATED: Mapping[str, tuple[str, str]] = {
    "permit.expiring": ("Izin tinggal segera berakhir", "A stay permit expires soon"),
    "permit.expired": ("Overstay: izin tinggal telah berakhir", "Overstay: the stay permit has expired"),
    "permit.overstay-exceeded": (
        "Overstay lebih dari 60 hari: deportasi dan penangkalan",
        "Overstay beyond 60 days: deportation and a re-entry ban are due",
    ),
}


def title(event_type: str, facts: Mapping[str, int]) -> dict[str, str]:
    days = facts.get("days_left", facts.get("days_overstayed"))
    if days is None and event_type in _UNDATED:
        indonesian, english = _UNDATED[event_type]
        return {"id": indonesian, "en": english}
    indonesian, english = _TITLES[event_type]
    return {"id": indonesian.format(days=days), "en": english.format(days=days)}


def alert_notice(
    *,
    alert_id: UUID,
    agency: Agency,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    severity: str,
    data: ForeignerEvent,
    place: str | None,
    guest: bool,
) -> dict[str, Any]:
    """The notice of one alert for one agency (JSON-ready) as stored: the webhook body and Kafka value of message
    ``alert`` once :func:`within` has passed it. The person is the agency's record of them; an agency told of the
    place a person left, or of a guest who lives elsewhere, is not told where they live. The scope (where, whether
    as a guest, which permit) stays with it, so that the agreement in force can be asked again when it leaves."""
    permit_type, permit_purpose = permit_scope(getattr(data, "permit", None) or data.foreigner.permit)
    notice = {
        "alert_id": str(alert_id),
        "agency_id": agency.id,
        "event": {"id": event_id, "type": event_type, "time": occurred_at.isoformat()},
        "severity": severity,
        "place": place,
        "title": {},
        "person": agency.record_of(data),
        "details": details(data),
        SCOPE: {
            "place": place,
            "guest": guest,
            "permit_type": permit_type,
            "permit_purpose": permit_purpose,
        },
    }
    return {**(within(notice, agency.allowed, None) or {}), SCOPE: notice[SCOPE]}


def within(notice: Mapping[str, Any], allowed: frozenset[str], agreement: Agreement | None) -> dict[str, Any] | None:
    """``notice`` as an agency may be given it: None if ``agreement`` (None: the controller) does not admit it (its
    event, where, as a guest or not, which permit); else only what ``allowed`` covers — the person's fields, the
    place (a village of residence or stay), the details derived from them, the resolution if it names an event the
    agreement lists — with the title written from what is left, and the scope kept internal."""
    scope = notice.get(SCOPE)
    event_type = notice["event"]["type"]
    if agreement is not None and not _admitted(agreement, event_type, scope):
        return None
    kept = {name: value for name, value in notice.items() if name != SCOPE}
    if "person" in kept:
        kept["person"] = {
            name: value for name, value in kept["person"].items() if name in allowed or name in RECORD_IDS
        }
    if _place_field(scope) not in allowed:
        kept["place"] = None
    if "details" in kept:
        kept["details"] = {
            name: value for name, value in kept["details"].items() if _DETAIL_FIELDS.get(name, frozenset()) <= allowed
        }
        kept["title"] = title(event_type, kept["details"])
    if "resolution" in kept:
        kept["resolution"] = resolution_told(kept["resolution"], agreement)
    return kept


def resolution_told(resolution: str | None, agreement: Agreement | None) -> str | None:
    """What closed an alert, as its agency may be told: an event its agreement does not list is only "closed"."""
    if agreement is not None and resolution in EVENT_NAMES and resolution not in agreement.event_types:
        return CLOSED
    return resolution


def _admitted(agreement: Agreement, event_type: str, scope: Mapping[str, Any] | None) -> bool:
    if scope is None:
        return event_type in agreement.event_types
    return agreement.admits_scope(
        event_type, scope["permit_type"], scope["permit_purpose"], scope["place"], guest=scope["guest"]
    )


def _place_field(scope: Mapping[str, Any] | None) -> str:
    """The field an alert's place is: where the person stays, for a guest; where they live (or lived), else."""
    return "stay_village_code" if scope is not None and scope.get("guest") else "residence_village_code"


def disclosed_fields(notice: Mapping[str, Any]) -> set[str]:
    """The fields a notice as given discloses: the person's, the place's, and those its details come from."""
    fields = set(notice.get("person", {})) - RECORD_IDS
    if notice.get("place") is not None:
        fields.add(_place_field(notice.get(SCOPE)))
    for name in notice.get("details", {}):
        fields |= _DETAIL_FIELDS.get(name, frozenset())
    return fields


def people(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The people a message carries: one for an alert (and its resolution, escalation), every one for a digest."""
    return [notice["person"] for notice in notices_in(payload) if notice.get("person")]


def notices_in(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(payload["alerts"]) if payload.get("message") == "digest" else [payload]


def payload_within(
    payload: Mapping[str, Any], allowed: frozenset[str], agreement: Agreement | None
) -> dict[str, Any] | None:
    """A message as an agency may receive it now (see :func:`within`); a notice the agreement does not admit is
    left out of a digest, and a message of one is not sent at all (None)."""
    if payload.get("message") == "digest":
        kept = [given for notice in payload["alerts"] if (given := within(notice, allowed, agreement)) is not None]
        return {**payload, "title": _digest_title(payload["date"], len(kept)), "alerts": kept} if kept else None
    return within(payload, allowed, agreement)


def message(
    notice: Mapping[str, Any], *, message_id: UUID, kind: str, extra: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """A notice as sent: which message it is (alert, resolved, escalation) and its id on every channel."""
    return {"message_id": str(message_id), "message": kind, **notice, **(extra or {})}


def digest_message(*, message_id: UUID, agency_id: str, day: date, notices: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "message_id": str(message_id),
        "message": "digest",
        "agency_id": agency_id,
        "date": day.isoformat(),
        "title": _digest_title(day.isoformat(), len(notices)),
        "alerts": list(notices),
    }


def _digest_title(day: str, count: int) -> dict[str, str]:
    return {
        "id": f"Ringkasan harian TIMPORA {day}: {count} peringatan",
        "en": f"TIMPORA daily digest {day}: {count} alert{'' if count == 1 else 's'}",
    }


def endpoint_disabled_message(*, message_id: UUID, agency_id: str, url: str, reason: str) -> dict[str, Any]:
    return {
        "message_id": str(message_id),
        "message": "endpoint-disabled",
        "agency_id": agency_id,
        "title": {
            "id": "Webhook TIMPORA Anda dinonaktifkan",
            "en": "Your TIMPORA webhook was disabled",
        },
        "details": {"url": url, "reason": reason},
    }


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


def email(sent: Mapping[str, Any], zone: ZoneInfo) -> Email:
    """A message as an e-mail an officer reads: Indonesian then English, places by name beside their code, dates
    the Indonesian way in the agency's own zone; a plain-text part and the same in HTML."""
    kind = sent["message"]
    prefix_id, prefix_en = _MESSAGES.get(kind, ("", ""))
    heading = sent["title"]
    subject = f"[TIMPORA] {prefix_id}{heading['id']} / {prefix_en}{heading['en']}"
    lines = [f"{prefix_id}{heading['id']}", f"{prefix_en}{heading['en']}", ""]
    if kind == "digest":
        for index, notice in enumerate(sent["alerts"], start=1):
            lines.append(f"{index}. {notice['title']['id']} / {notice['title']['en']}")
            lines.extend(_person_lines(notice, zone, indent="   "))
    else:
        lines.extend(_person_lines(sent, zone, indent=""))
        lines.extend(
            f"{_DETAIL_LABELS.get(name, (name, name))[0]} / {_DETAIL_LABELS.get(name, (name, name))[1]}: {value}"
            for name, value in sorted(sent.get("details", {}).items())
        )
        if "resolution" in sent:
            lines.append(f"Penyelesaian / Resolution: {sent['resolution']}")
    lines += ["", f"ID pesan / Message id: {sent['message_id']}"]
    if "alert_id" in sent:
        lines.append(f"ID peringatan / Alert id: {sent['alert_id']}")
    lines += [
        "",
        "Pesan ini dikirim otomatis oleh TIMPORA. Konfirmasikan penerimaan melalui API peringatan.",
        "This message was sent automatically by TIMPORA. Acknowledge it through the alerts API.",
    ]
    return Email(subject, "\n".join(lines) + "\n", _html(lines))


def _html(lines: list[str]) -> str:
    """The plain-text lines as a simple HTML page: the two title lines as a heading, every value escaped."""
    title, *rest = lines
    body = "".join("<br>\n" if not line else f"<div>{html.escape(line)}</div>\n" for line in rest)
    return (
        '<!DOCTYPE html>\n<html lang="id"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n<h2>{html.escape(title)}</h2>\n{body}</body></html>\n"
    )


def indonesian_date(day: date) -> str:
    """``12 Desember 2026``."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _shown(name: str, value: Any) -> str:  # noqa: ANN401 - a JSON value of a record
    """A field's value as an officer reads it: a village by name beside its code, a date the Indonesian way."""
    if name in _VILLAGE_FIELDS and isinstance(value, str):
        return _village(value)
    if name in _DATE_FIELDS and isinstance(value, str):
        try:
            return indonesian_date(date.fromisoformat(value[:10]))
        except ValueError:
            return value
    return str(value)


def _village(code: str) -> str:
    region = regions.lookup(code)
    return f"{region.path} ({code})" if region is not None else code


def _person_lines(notice: Mapping[str, Any], zone: ZoneInfo, *, indent: str) -> list[str]:
    person = notice.get("person", {})
    lines = [
        f"{indent}{_LABELS[name][0]} / {_LABELS[name][1]}: {_shown(name, value)}"
        for name, value in person.items()
        if value is not None and name in _LABELS
    ]
    place = notice.get("place")
    if place and place not in {person.get(name) for name in _VILLAGE_FIELDS}:
        lines.append(f"{indent}Wilayah / Area: {_village(place)}")
    event = notice.get("event")
    if event is not None:
        moment = datetime.fromisoformat(event["time"]).astimezone(zone)
        clock = f"{moment:%H.%M} {_ZONE_NAMES.get(zone.key, moment.tzname() or zone.key)}"
        lines.append(f"{indent}Waktu kejadian / When: {indonesian_date(moment.date())} {clock}")
    return lines
