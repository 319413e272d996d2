"""What an agency is told: one notice per alert, the same on every channel (webhook body, Kafka value, e-mail
text), in Indonesian and English. The person in it is the agency's record under its agreement (the controller's:
everything it holds), exactly what the sharing API would show it, and nothing else; :func:`within` filters a
notice again through the agreement in force when it is sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from timpora.common.events.payloads import ForeignerEvent, PermitExpired, PermitExpiring, PermitOverstayExceeded
from timpora.common.register.agreements import RECORD_IDS
from timpora.common.register.members import Agency

#: The fields a notice's place may be told under: the village is where the person lives or stays.
_PLACE_FIELDS = frozenset({"residence_village_code", "stay_village_code"})
#: What each detail is derived from: the days from the permit's expiry, the fee from what was paid of it.
_DETAIL_FIELDS = {
    "days_left": "permit_expires_on",
    "threshold_days": "permit_expires_on",
    "days_overstayed": "permit_expires_on",
    "fee_due_idr": "permit_fee_paid_days",
}

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
    "residence_village_code": ("Kode desa/kelurahan tempat tinggal", "Village code of residence"),
    "residence_since": ("Tinggal sejak", "Living there since"),
    "stay_provider": ("Penginapan", "Accommodation"),
    "stay_village_code": ("Kode desa/kelurahan penginapan", "Village code of the accommodation"),
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
) -> dict[str, Any]:
    """The notice of one alert for one agency (JSON-ready): the webhook body and Kafka value of message ``alert``.
    The person is the agency's record of them; an agency told of the place a person left, or of a guest who lives
    elsewhere, is not told where they live."""
    notice = {
        "alert_id": str(alert_id),
        "agency_id": agency.id,
        "event": {"id": event_id, "type": event_type, "time": occurred_at.isoformat()},
        "severity": severity,
        "place": place,
        "title": {},
        "person": agency.record_of(data),
        "details": details(data),
    }
    return within(notice, agency.allowed)


def within(notice: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """``notice`` with only what ``allowed`` (an agreement's fields) covers: the person's fields, the place (a
    village of residence or stay), the details derived from them; the title is written from what is left."""
    kept = dict(notice)
    if "person" in kept:
        kept["person"] = {
            name: value for name, value in kept["person"].items() if name in allowed or name in RECORD_IDS
        }
    if not _PLACE_FIELDS & allowed:
        kept["place"] = None
    if "details" in kept:
        kept["details"] = {
            name: value for name, value in kept["details"].items() if _DETAIL_FIELDS.get(name, "") in allowed
        }
        kept["title"] = title(kept["event"]["type"], kept["details"])
    return kept


def people(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The people a message carries: one for an alert (and its resolution, escalation), every one for a digest."""
    notices = payload["alerts"] if payload.get("message") == "digest" else [payload]
    return [notice["person"] for notice in notices if notice.get("person")]


def payload_within(
    payload: Mapping[str, Any], allowed: frozenset[str], events: frozenset[str] | None
) -> dict[str, Any] | None:
    """A message as an agency may receive it now (see :func:`within`); a notice of an event ``events`` does not
    list is left out of a digest, and a message of one is not sent at all (None). ``events`` None: any."""

    def admitted(notice: Mapping[str, Any]) -> bool:
        return events is None or notice["event"]["type"] in events

    if payload.get("message") == "digest":
        kept = [within(notice, allowed) for notice in payload["alerts"] if admitted(notice)]
        return {**payload, "title": _digest_title(payload["date"], len(kept)), "alerts": kept} if kept else None
    return within(payload, allowed) if admitted(payload) else None


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


def email_text(sent: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of a message, Indonesian then English."""
    kind = sent["message"]
    prefix_id, prefix_en = _MESSAGES.get(kind, ("", ""))
    heading = sent["title"]
    subject = f"[TIMPORA] {prefix_id}{heading['id']} / {prefix_en}{heading['en']}"
    lines = [f"{prefix_id}{heading['id']}", f"{prefix_en}{heading['en']}", ""]
    if kind == "digest":
        for index, notice in enumerate(sent["alerts"], start=1):
            lines.append(f"{index}. {notice['title']['id']} / {notice['title']['en']}")
            lines.extend(_person_lines(notice, indent="   "))
    else:
        lines.extend(_person_lines(sent, indent=""))
        lines.extend(f"{name}: {value}" for name, value in sorted(sent.get("details", {}).items()))
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
    return subject, "\n".join(lines) + "\n"


def _person_lines(notice: Mapping[str, Any], *, indent: str) -> list[str]:
    person = notice.get("person", {})
    lines = [
        f"{indent}{_LABELS[name][0]} / {_LABELS[name][1]}: {value}"
        for name, value in person.items()
        if value is not None and name in _LABELS
    ]
    if notice.get("place"):
        lines.append(f"{indent}Wilayah / Area: {notice['place']}")
    return lines
