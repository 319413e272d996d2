"""What an agency is told: one notice per alert, with only the fields the agency's role needs, the
same on every channel (webhook body, Kafka value, e-mail text), in Indonesian and English."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from timpora.alerts.domain.directory import AgencyKind
from timpora.common.events.payloads import ForeignerEvent, PermitExpired, PermitExpiring, PermitOverstayExceeded

#: Every agency is told who and where; the rest depends on what its role needs to act.
_BASE = ("full_name", "nationality", "village_code", "permit_type", "permit_expires_on")
ROLE_FIELDS: Mapping[AgencyKind, tuple[str, ...]] = {
    AgencyKind.IMMIGRATION: (
        *_BASE,
        "foreigner_id",
        "sex",
        "date_of_birth",
        "passport_number",
        "passport_country",
        "permit_number",
        "occupation",
        "sponsor_name",
        "residence_address",
        "stay_provider",
        "stay_check_in",
    ),
    AgencyKind.POLICE: (
        *_BASE,
        "sex",
        "passport_number",
        "passport_country",
        "occupation",
        "sponsor_name",
        "residence_address",
        "stay_provider",
        "stay_check_in",
    ),
    AgencyKind.MILITARY: (*_BASE, "occupation", "residence_address"),
    AgencyKind.LOCAL_GOVERNMENT: (*_BASE, "occupation", "sponsor_name", "residence_address"),
    AgencyKind.MANPOWER: (*_BASE, "occupation", "sponsor_name"),
    AgencyKind.CIVIL_REGISTRY: (*_BASE, "sex", "date_of_birth", "residence_address"),
    # The sponsor is named in every overstay alert: it must report and bears the cost of removal (art. 63).
    AgencyKind.VILLAGE: (*_BASE, "occupation", "sponsor_name"),
    # Prosecuting immigration offences (overstay, UU 6/2011 art. 78; the sponsor's duties, art. 63): who, by passport.
    AgencyKind.PROSECUTOR: (*_BASE, "passport_number", "passport_country", "sponsor_name"),
    AgencyKind.INTELLIGENCE: (
        *_BASE,
        "sex",
        "passport_number",
        "passport_country",
        "occupation",
        "sponsor_name",
        "residence_address",
    ),
    AgencyKind.PUBLIC_ORDER: (*_BASE, "occupation", "residence_address"),
    # Foreign students and religious workers: what they do and who sponsors them (school, pesantren, organisation).
    AgencyKind.RELIGIOUS_AFFAIRS: (*_BASE, "occupation", "sponsor_name"),
    AgencyKind.HARBOUR_MASTER: (*_BASE, "passport_number", "passport_country"),
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
    "nationality": ("Kewarganegaraan", "Nationality"),
    "village_code": ("Kode desa/kelurahan", "Village code"),
    "permit_type": ("Jenis izin tinggal", "Permit type"),
    "permit_expires_on": ("Berlaku sampai", "Valid until"),
    "foreigner_id": ("ID", "ID"),
    "sex": ("Jenis kelamin", "Sex"),
    "date_of_birth": ("Tanggal lahir", "Date of birth"),
    "passport_number": ("Nomor paspor", "Passport number"),
    "passport_country": ("Negara penerbit paspor", "Passport issued by"),
    "permit_number": ("Nomor izin tinggal", "Permit number"),
    "occupation": ("Pekerjaan", "Occupation"),
    "sponsor_name": ("Penjamin", "Sponsor"),
    "residence_address": ("Alamat", "Address"),
    "stay_provider": ("Penginapan", "Accommodation"),
    "stay_check_in": ("Check-in", "Check-in"),
}


def person_fields(data: ForeignerEvent, place: str | None) -> dict[str, Any]:
    """Every field a notice may carry, before the role's allow-list picks from it."""
    person = data.foreigner
    permit = getattr(data, "permit", None) or person.permit
    # The stay a stay event reports (even its check-out); otherwise only the one the person is in now.
    stay = getattr(data, "stay", None) or (person.stay if person.stay is not None and person.stay.open else None)
    return {
        "foreigner_id": str(person.foreigner_id),
        "full_name": person.full_name,
        "nationality": person.nationality,
        "sex": person.sex.value,
        "date_of_birth": person.date_of_birth.isoformat(),
        "passport_number": person.passport.number,
        "passport_country": person.passport.issuing_country,
        "occupation": person.occupation,
        "sponsor_name": person.sponsor.name if person.sponsor else None,
        "residence_address": person.residence.address if person.residence else None,
        "village_code": place,
        "permit_number": permit.number if permit else None,
        "permit_type": permit.type.value if permit else None,
        "permit_expires_on": permit.expires_on.isoformat() if permit else None,
        "stay_provider": stay.provider if stay else None,
        "stay_check_in": stay.check_in.isoformat() if stay else None,
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


def title(event_type: str, facts: Mapping[str, int]) -> dict[str, str]:
    days = facts.get("days_left", facts.get("days_overstayed", 0))
    indonesian, english = _TITLES[event_type]
    return {"id": indonesian.format(days=days), "en": english.format(days=days)}


def alert_notice(
    *,
    alert_id: UUID,
    agency_id: str,
    kind: AgencyKind,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    severity: str,
    data: ForeignerEvent,
    place: str | None,
) -> dict[str, Any]:
    """The notice of one alert for one agency (JSON-ready): the webhook body and Kafka value of message ``alert``.
    An agency told of the place a person left is not told the new address."""
    fields = person_fields(data, place)
    if place != data.jurisdiction:
        fields["residence_address"] = None
    facts = details(data)
    return {
        "alert_id": str(alert_id),
        "agency_id": agency_id,
        "event": {"id": event_id, "type": event_type, "time": occurred_at.isoformat()},
        "severity": severity,
        "title": title(event_type, facts),
        "person": {name: fields[name] for name in ROLE_FIELDS[kind]},
        "details": facts,
    }


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
        "title": {
            "id": f"Ringkasan harian TIMPORA {day.isoformat()}: {len(notices)} peringatan",
            "en": f"TIMPORA daily digest {day.isoformat()}: {len(notices)} alert{'' if len(notices) == 1 else 's'}",
        },
        "alerts": list(notices),
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
    return [
        f"{indent}{_LABELS[name][0]} / {_LABELS[name][1]}: {value}"
        for name, value in person.items()
        if value is not None and name in _LABELS
    ]
