"""What an agency is told: one notice per alert, the same on every channel (webhook body, Kafka value, e-mail
text), in Indonesian and English. The person in it is the agency's record under its agreement (the controller's:
everything it holds), exactly what the sharing API would show it, and nothing else; :func:`within` filters a
notice again through the agreement in force when it is sent."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from timpora.common import regions, spreadsheets
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
#: Coded values as an officer reads them, Indonesian / English.
_VALUES: Mapping[str, Mapping[str, str]] = {
    "sex": {"F": "Perempuan / Female", "M": "Laki-laki / Male", "X": "Tidak disebutkan / Unspecified"},
    "presence": {
        "present": "Di Indonesia / In Indonesia",
        "departed": "Telah keluar / Departed",
        "deported": "Telah dideportasi / Deported",
        "deceased": "Meninggal dunia / Deceased",
    },
    "permit_status": {
        "active": "Berlaku / Active",
        "extended": "Diperpanjang / Extended",
        "revoked": "Dicabut / Revoked",
        "expired": "Berakhir / Expired",
        "ended": "Selesai / Ended",
    },
    "permit_type": {
        "visit": "ITK (kunjungan / visit)",
        "visa-on-arrival": "ITK (visa on arrival)",
        "itas": "ITAS",
        "itap": "ITAP",
        "diplomatic": "Diplomatik / Diplomatic",
        "service": "Dinas / Service",
    },
    "permit_purpose": {
        "work": "Bekerja / Work",
        "investment": "Investasi / Investment",
        "family": "Keluarga / Family",
        "study": "Belajar / Study",
        "retirement": "Lanjut usia / Retirement",
        "other": "Lainnya / Other",
    },
}
_ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
#: Where a notice keeps its scope; never sent.
SCOPE = "_scope"
#: A message that gathers the notices of a burst for one agency's channel.
GROUP = "group"
_MANY = frozenset({"digest", GROUP})
#: The resolution an agency is told when what closed its alert is news its agreement does not cover.
CLOSED = "closed"
#: The event type of an alert a village's report opens (not a registry event: no agreement lists it, so only the
#: immigration offices, the data's controller, are ever told of one).
VILLAGE_REPORT = "village.report"

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
    "foreigner_id": ("ID orang asing", "Foreigner id"),
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


def report_notice(
    *, alert_id: UUID, agency_id: str, report: Mapping[str, Any], reported_at: datetime
) -> dict[str, Any]:
    """The notice of a village's report to one immigration office: what the village's officer wrote, where, and
    whether a photo came with it (the photo itself is fetched from the alerts API, never sent)."""
    village = str(report["village_code"])
    region = regions.lookup(village)
    name = region.name if region is not None else village
    return {
        "alert_id": str(alert_id),
        "agency_id": agency_id,
        "event": {"id": str(report["id"]), "type": VILLAGE_REPORT, "time": reported_at.isoformat()},
        "severity": "warning",
        "place": village,
        "title": {"id": f"Laporan dari Desa {name}", "en": f"A report from the village of {name}"},
        "report": {
            "id": str(report["id"]),
            "from_agency": report["agency_id"],
            "by": report["officer"],
            "about": report["about"],
            "where": report["place"],
            "what": report["what"],
            "photo": report["photo"],
        },
    }


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
    if kept.get("place") is not None and scope is not None:
        # Whether the place is where the person stays (a guest) or lives: the receiver reads the place right, and
        # the record of disclosing it names the right field.
        kept["place_kind"] = "stay" if scope.get("guest") else "residence"
    else:
        kept.pop("place_kind", None)
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


_PLACE_FIELDS = {"stay": "stay_village_code", "residence": "residence_village_code"}


def _place_field(scope: Mapping[str, Any] | None) -> str:
    """The field an alert's place is: where the person stays, for a guest; where they live (or lived), else."""
    return "stay_village_code" if scope is not None and scope.get("guest") else "residence_village_code"


def disclosed_fields(notice: Mapping[str, Any]) -> set[str]:
    """The fields a notice as given discloses: the person's, the place's, and those its details come from."""
    fields = set(notice.get("person", {})) - RECORD_IDS
    if notice.get("place") is not None:
        kind = notice.get("place_kind")
        fields.add(
            _place_field(notice.get(SCOPE)) if kind is None else _PLACE_FIELDS.get(kind, "residence_village_code")
        )
    for name in notice.get("details", {}):
        fields |= _DETAIL_FIELDS.get(name, frozenset())
    return fields


def people(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The people a message carries: one for an alert (and its resolution, escalation), every one for a digest."""
    return [notice["person"] for notice in notices_in(payload) if notice.get("person")]


def notices_in(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The notices a message gives in full: one, or those of a digest or a group (not those it only counts)."""
    return list(payload["alerts"]) if payload.get("message") in _MANY else [payload]


def payload_within(
    payload: Mapping[str, Any], allowed: frozenset[str], agreement: Agreement | None
) -> dict[str, Any] | None:
    """A message as an agency may receive it now (see :func:`within`); a notice the agreement does not admit is
    left out of a digest, and a message of one is not sent at all (None)."""
    if payload.get("message") in _MANY:
        kept = [given for notice in payload["alerts"] if (given := within(notice, allowed, agreement)) is not None]
        if not kept:
            return None
        if payload["message"] == GROUP:
            return {**payload, "alerts": kept}
        return {**payload, "title": _digest_title(payload["date"], len(kept)), "alerts": kept}
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


_SHORT: Mapping[str, tuple[str, str]] = {
    "foreigner.arrived": ("kedatangan", "arrival"),
    VILLAGE_REPORT: ("laporan desa", "village report"),
    "foreigner.imported": ("data dimasukkan", "record imported"),
    "foreigner.updated": ("perubahan data", "details changed"),
    "foreigner.residence-reported": ("laporan tempat tinggal", "residence reported"),
    "foreigner.stay-reported": ("laporan menginap", "stay reported"),
    "foreigner.departed": ("keberangkatan", "departure"),
    "permit.issued": ("izin diterbitkan", "permit issued"),
    "permit.extended": ("izin diperpanjang", "permit extended"),
    "permit.revoked": ("izin dicabut", "permit revoked"),
    "permit.converted": ("alih status izin", "permit converted"),
    "permit.reentry-granted": ("izin masuk kembali", "re-entry permit"),
    "permit.exit-permit-issued": ("EPO", "exit permit only"),
    "permit.expiring": ("izin segera berakhir", "permit expiring"),
    "permit.expired": ("overstay", "overstay"),
    "permit.overstay-exceeded": ("overstay > 60 hari", "overstay > 60 days"),
    "permit.overstay-fee-paid": ("biaya overstay dibayar", "overstay fee paid"),
    "foreigner.enforcement-recorded": ("tindakan administratif", "immigration action"),
    "foreigner.deported": ("deportasi", "deportation"),
    "foreigner.banned": ("penangkalan", "re-entry ban"),
    "foreigner.stay-overdue": ("belum check-out", "not checked out"),
}
_SHORT_KINDS: Mapping[str, tuple[str, str]] = {
    "alert": ("", ""),
    "resolved": ("selesai: ", "resolved: "),
    "escalation": ("eskalasi: ", "escalated: "),
}
_SEVERITIES: Mapping[str, tuple[str, str]] = {
    "critical": ("kritis", "critical"),
    "warning": ("penting", "warning"),
    "info": ("informasi", "info"),
}
#: The most urgent first: by severity, then an escalation before a new alert before a resolution.
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_KIND_RANK = {"escalation": 0, "alert": 1, "resolved": 2}
#: Summary entries named in a group's title (its e-mail subject, short enough for a phone); the body has them all.
_SUBJECT_ENTRIES = 2


def group_message(*, message_id: UUID, agency_id: str, notices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The notices of a burst for one agency's channel, as stored: each in full, as it was queued.
    :func:`as_sent` makes the message the agency is sent from it."""
    return {"message_id": str(message_id), "message": GROUP, "agency_id": agency_id, "alerts": list(notices)}


def _urgency(notice: Mapping[str, Any]) -> tuple[int, int, int, int, str]:
    """Most urgent first: by severity, an escalation before a new alert before a resolution, the longest overstay
    (nearest its 60th day), the soonest expiry, the earliest event."""
    facts = notice.get("details", {})
    return (
        # What closed is news after everything still open, however severe it was.
        int(notice.get("message") == "resolved") * len(_SEVERITY_RANK)
        + _SEVERITY_RANK.get(notice.get("severity", ""), len(_SEVERITY_RANK)),
        _KIND_RANK.get(notice.get("message", ""), len(_KIND_RANK)),
        -int(facts.get("days_overstayed", 0)),
        int(facts.get("days_left", 10_000)),
        notice.get("event", {}).get("time", ""),
    )


def as_sent(payload: Mapping[str, Any], max_shown: int) -> dict[str, Any]:
    """A group as its agency is sent it: a title and a summary (counts by message, event type and severity, the
    most urgent first), every notice's id, the ``max_shown`` most urgent notices in full and the others only by id
    and type — "N more not shown", each in the agency's alerts list. Anything else is sent as it is."""
    if payload.get("message") != GROUP:
        return dict(payload)
    ordered = sorted(payload["alerts"], key=_urgency)
    shown, rest = ordered[:max_shown], ordered[max_shown:]
    counts: dict[tuple[str, str, str], int] = {}
    for notice in ordered:
        key = (notice["message"], notice["event"]["type"], notice["severity"])
        counts[key] = counts.get(key, 0) + 1
    summary = [
        {"message": kind, "event_type": event_type, "severity": severity, "count": count}
        for (kind, event_type, severity), count in sorted(
            counts.items(),
            key=lambda item: (
                (item[0][0] == "resolved", _SEVERITY_RANK.get(item[0][2], 9)),
                _KIND_RANK.get(item[0][0], 9),
                -item[1],
                item[0],
            ),
        )
    ]
    return {
        "message_id": payload["message_id"],
        "message": GROUP,
        "agency_id": payload["agency_id"],
        "title": _group_title(summary, len(ordered)),
        "summary": {"total": len(ordered), "shown": len(shown), "not_shown": len(rest), "by_type": summary},
        "notice_ids": [notice["message_id"] for notice in ordered],
        "alerts": shown,
        "not_shown": [
            {
                "message_id": notice["message_id"],
                "message": notice["message"],
                "alert_id": notice.get("alert_id"),
                "event_type": notice["event"]["type"],
                "severity": notice["severity"],
            }
            for notice in rest
        ],
    }


def _named(entry: Mapping[str, Any]) -> tuple[str, str]:
    """What a summary entry counts, in both languages: ``eskalasi: overstay`` / ``escalated: overstay``."""
    kind_id, kind_en = _SHORT_KINDS.get(entry["message"], ("", ""))
    short_id, short_en = _SHORT.get(entry["event_type"], (entry["event_type"], entry["event_type"]))
    return f"{kind_id}{short_id}", f"{kind_en}{short_en}"


def _both(indonesian: str, english: str) -> str:
    """``Indonesian / English``, or the one word where both languages say the same."""
    return indonesian if indonesian == english else f"{indonesian} / {english}"


def _entry(entry: Mapping[str, Any]) -> tuple[str, str]:
    """``overstay (980)`` in both languages."""
    indonesian, english = _named(entry)
    return f"{indonesian} ({entry['count']})", f"{english} ({entry['count']})"


def _group_title(summary: list[dict[str, Any]], total: int) -> dict[str, str]:
    # The title counts by what happened, whatever the severity: the summary in the body tells severities apart.
    merged: dict[tuple[str, str], int] = {}
    for entry in summary:
        merged[entry["message"], entry["event_type"]] = (
            merged.get((entry["message"], entry["event_type"]), 0) + entry["count"]
        )
    named = [
        {"message": kind, "event_type": event_type, "count": count} for (kind, event_type), count in merged.items()
    ]
    entries = [_entry(entry) for entry in named[:_SUBJECT_ENTRIES]]
    more = ", …" if len(named) > _SUBJECT_ENTRIES else ""
    return {
        "id": f"{total} pemberitahuan: {', '.join(entry[0] for entry in entries)}{more}",
        "en": f"{total} notice{'' if total == 1 else 's'}: {', '.join(entry[1] for entry in entries)}{more}",
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
    #: Files attached (name, CSV text): a group's list of every notice it holds.
    attachments: tuple[tuple[str, str], ...] = ()


_FOOTER = [
    "",
    "Pesan ini dikirim otomatis oleh TIMPORA. Konfirmasikan setiap peringatan sendiri-sendiri di daftar peringatan",
    "TIMPORA instansi Anda (API peringatan: GET /v1/alerts); tanyakan akses ke Kantor Imigrasi.",
    "This message was sent automatically by TIMPORA. Acknowledge each alert on its own in your agency's TIMPORA",
    "alerts list (alerts API: GET /v1/alerts); ask the immigration office for access.",
]


def email(sent: Mapping[str, Any], zone: ZoneInfo) -> Email:
    """A message as an e-mail an officer reads: Indonesian then English, places by name beside their code, dates
    the Indonesian way in the agency's own zone; a plain-text part and the same in HTML. A group's subject says how
    many notices it holds, and the list of all of them is attached."""
    kind = sent["message"]
    if kind == GROUP:
        return _group_email(sent, zone)
    prefix_id, prefix_en = _MESSAGES.get(kind, ("", ""))
    heading = sent["title"]
    subject = f"[TIMPORA] {prefix_id}{heading['id']} / {prefix_en}{heading['en']}"
    lines = [f"{prefix_id}{heading['id']}", f"{prefix_en}{heading['en']}", ""]
    if kind == "digest":
        for index, notice in enumerate(sent["alerts"], start=1):
            lines.append(f"{index}. {notice['title']['id']} / {notice['title']['en']}")
            lines.extend(_person_lines(notice, zone, indent="   "))
    else:
        lines.extend(_notice_lines(sent, zone, indent=""))
    lines += ["", f"ID pesan / Message id: {sent['message_id']}"]
    if "alert_id" in sent:
        lines.append(f"ID peringatan / Alert id: {sent['alert_id']}")
    lines += _FOOTER
    return Email(subject, "\n".join(lines) + "\n", _html(lines))


def _notice_lines(notice: Mapping[str, Any], zone: ZoneInfo, *, indent: str) -> list[str]:
    lines = _person_lines(notice, zone, indent=indent)
    report = notice.get("report")
    if report is not None:
        lines += [
            f"{indent}Pelapor / Reported by: {report['by']} ({report['from_agency']})",
            *([f"{indent}Tentang / About: {report['about']}"] if report.get("about") else []),
            f"{indent}Tempat / Where: {report['where']}",
            f"{indent}Laporan / Report: {report['what']}",
            *([f"{indent}Foto / Photo: lihat portal / see the portal"] if report.get("photo") else []),
        ]
    lines.extend(
        f"{indent}{_DETAIL_LABELS.get(name, (name, name))[0]} / {_DETAIL_LABELS.get(name, (name, name))[1]}: {value}"
        for name, value in sorted(notice.get("details", {}).items())
    )
    if "resolution" in notice:
        lines.append(f"{indent}Penyelesaian / Resolution: {_resolution(notice['resolution'])}")
    return lines


def _group_email(sent: Mapping[str, Any], zone: ZoneInfo) -> Email:
    heading, summary = sent["title"], sent["summary"]
    if summary["total"] == 1 and len(sent["alerts"]) == 1:
        # A message of one notice reads as that notice, under the message's own id (its list attached all the same).
        alone = email({**sent["alerts"][0], "message_id": sent["message_id"]}, zone)
        return replace(alone, attachments=(("pemberitahuan.csv", _notice_list(sent)),))
    # Indonesian only, and short: the first words are all a phone shows; the body gives both languages.
    subject = f"[TIMPORA] {heading['id']}"
    lines = [heading["id"], heading["en"], "", "Ringkasan / Summary:"]
    for entry in summary["by_type"]:
        severity = _both(*_SEVERITIES.get(entry["severity"], (entry["severity"], entry["severity"])))
        lines.append(f"  {entry['count']:>5}  {_both(*_named(entry))} — {severity}")
    lines.append("")
    if summary["not_shown"]:
        shown = summary["shown"]
        lines += [
            f"{shown} yang paling mendesak dari {summary['total']} ditampilkan di bawah.",
            f"The {shown} most urgent of {summary['total']} are shown below.",
            "",
        ]
    for index, notice in enumerate(sent["alerts"], start=1):
        prefix_id, prefix_en = _MESSAGES.get(notice["message"], ("", ""))
        lines.append(f"{index}. {prefix_id}{notice['title']['id']} / {prefix_en}{notice['title']['en']}")
        lines.extend(_notice_lines(notice, zone, indent="   "))
        lines.append(f"   ID peringatan / Alert id: {notice.get('alert_id')}")
        lines.append("")
    if summary["not_shown"]:
        count = summary["not_shown"]
        lines += [
            f"{count} lainnya tidak ditampilkan — lihat daftar peringatan.",
            f"{count} more not shown — see the alerts list.",
            "",
        ]
    lines += [
        f"ID pesan / Message id: {sent['message_id']}",
        "Daftar semua pemberitahuan dalam pesan ini terlampir (pemberitahuan.csv).",
        "Every notice in this message is listed in the attached pemberitahuan.csv.",
        *_FOOTER,
    ]
    return Email(subject, "\n".join(lines) + "\n", _html(lines), (("pemberitahuan.csv", _notice_list(sent)),))


def _resolution(resolution: str | None) -> str:
    """What closed an alert, in words: an event by its name, else as it was written (an officer's own words)."""
    if resolution == CLOSED:
        return _both("ditutup", "closed")
    if resolution is not None and resolution in _SHORT:
        return _both(*_SHORT[resolution])
    return str(resolution)


def _notice_list(sent: Mapping[str, Any]) -> str:
    """Every notice of a group by id, type and severity, and whether the message shows it: no personal data."""
    out = io.StringIO()
    writer = spreadsheets.writer(out, lineterminator="\r\n")
    writer.writerow(["message_id", "message", "alert_id", "event_type", "severity", "shown"])
    for notice in sent["alerts"]:
        writer.writerow(
            [
                notice["message_id"],
                notice["message"],
                notice.get("alert_id"),
                notice["event"]["type"],
                notice["severity"],
                "yes",
            ]
        )
    for entry in sent["not_shown"]:
        writer.writerow(
            [entry["message_id"], entry["message"], entry["alert_id"], entry["event_type"], entry["severity"], "no"]
        )
    return out.getvalue()


def _html(lines: list[str]) -> str:
    """The plain-text lines as a simple HTML page: the two title lines as a heading, every value escaped."""
    title, *rest = lines
    body = "".join("<br>\n" if not line else f"<div>{html.escape(line)}</div>\n" for line in rest)
    return (
        '<!DOCTYPE html>\n<html lang="id"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        # Lines keep their indentation and wrap on a phone; nothing else is styled.
        "<style>body{font-family:sans-serif;max-width:48em;margin:0 auto;padding:0 .5em}"
        "div{white-space:pre-wrap;overflow-wrap:anywhere}</style></head>\n"
        f"<body>\n<h2>{html.escape(title)}</h2>\n{body}</body></html>\n"
    )


def indonesian_date(day: date) -> str:
    """``12 Desember 2026``."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _shown(name: str, value: Any) -> str:  # noqa: ANN401 - a JSON value of a record
    """A field's value as an officer reads it: a village by name beside its code, a date the Indonesian way."""
    if name in _VILLAGE_FIELDS and isinstance(value, str):
        return _village(value)
    if name in _VALUES and isinstance(value, str):
        return _VALUES[name].get(value, value)
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
