"""A village's report to immigration (Desa Binaan Imigrasi), through the real alerts service and PostgreSQL: kept,
opened as an alert for the immigration office controlling the village and sent on its channels; nobody else hears
of it or may fetch its photo; a report that cannot be taken is refused field by field, and nothing of it is kept."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.alerts.conftest import AlertsUnderTest
from tests.support import images
from tests.support import register as register_variants
from timpora.alerts import lifecycle
from timpora.alerts.models import alerts, deliveries, village_reports

VILLAGE, OFFICE = "desa-lajing", "kanim-pamekasan"
WORDS = {
    "about": "Dua laki-laki asing, berbahasa Inggris",
    "where": "Rumah kosong dekat dermaga Lajing",
    "what": "Sejak Senin menginap tanpa lapor RT;\ndatang dengan perahu malam hari.",
}


def _report(**changes: Any) -> dict[str, Any]:
    return {**WORDS, "by": "Pak Kades", "photo_base64": base64.b64encode(images.png()).decode()} | changes


async def _kept(service: AlertsUnderTest) -> int:
    async with service.runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(village_reports))).scalar_one())


async def test_a_villages_report_reaches_its_immigration_office_as_an_alert_and_nobody_else(
    service: AlertsUnderTest,
) -> None:
    sent = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=_report())

    assert sent.status_code == 201, sent.text
    receipt = sent.json()
    assert receipt["offices"] == [OFFICE]
    assert receipt["village_code"] == "35.26.05.2003"

    listed = (await service.as_agency(OFFICE, "GET", "/v1/alerts")).json()["alerts"]
    [alert] = [shown for shown in listed if shown["event_type"] == "village.report"]
    report = alert["notice"]["report"]
    assert {name: report[name] for name in WORDS} == WORDS
    assert report["by"] == "Pak Kades"
    assert report["photo"] is True
    assert alert["notice"]["title"]["id"] == "Laporan dari Desa Lajing"
    assert alert["status"] == "open"

    # The office acts on it as on any alert, in its officer's name.
    done = await service.as_agency(OFFICE, "POST", f"/v1/alerts/{alert['id']}/acknowledge", json={"by": "Bu Sari"})
    assert done.status_code == 200, done.text

    # Its photo, without what the phone wrote into it, for the office and the village that sent it alone.
    photo = await service.as_agency(OFFICE, "GET", f"/v1/reports/{report['id']}/photo")
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/png"
    assert photo.content == images.png(metadata=False)
    assert images.GPS not in photo.content
    assert (await service.as_agency(VILLAGE, "GET", f"/v1/reports/{report['id']}/photo")).status_code == 200
    for other in ("polres-bangkalan", "pemkab-bangkalan"):
        assert (await service.as_agency(other, "GET", f"/v1/reports/{report['id']}/photo")).status_code == 404
        assert (await service.as_agency(other, "GET", f"/v1/alerts/{alert['id']}")).status_code == 404
        theirs = (await service.as_agency(other, "GET", "/v1/alerts")).json()["alerts"]
        assert all(shown["event_type"] != "village.report" for shown in theirs)

    # Sent on the office's channels: its e-mail reads as the report, in both languages.
    async with service.runtime.sessions() as session:
        queued = (await session.execute(select(deliveries).where(deliveries.c.agency_id != OFFICE))).all()
    assert all(row.payload.get("event", {}).get("type") != "village.report" for row in queued)
    await service.deliver()
    mails = [mail for mail in service.smtp.messages if "Laporan dari Desa Lajing" in mail.message["Subject"]]
    assert [mail.rcpt_tos for mail in mails] == [("inteldakim@kanim-pamekasan.timpora.example",)]
    assert "Tempat / Where: Rumah kosong dekat dermaga Lajing" in mails[0].text
    assert "Pelapor / Reported by: Pak Kades (desa-lajing)" in mails[0].text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"what": "  "}, "what"),
        ({"what": None}, "what"),
        ({"where": "x" * 301}, "where"),
        ({"what": "ada\x00orang"}, "what"),
        ({"photo_base64": "bukan base64!"}, "photo_base64"),
        ({"photo_base64": base64.b64encode(b"GIF89a" + bytes(40)).decode()}, "photo_base64"),
        ({"photo_base64": base64.b64encode(images.jpeg()[:-2]).decode()}, "photo_base64"),
        ({"village_code": "35.26.05.2004"}, "village_code"),  # a village not theirs
        ({"by": None}, "by"),
        ({"extra": "field"}, "extra"),
    ],
)
async def test_a_report_that_cannot_be_taken_is_refused_by_its_field_and_nothing_is_kept(
    service: AlertsUnderTest, changes: dict[str, Any], field: str
) -> None:
    before = await _kept(service)
    body = {name: value for name, value in _report(**changes).items() if value is not None}
    if changes.get("what") == "  ":
        body["what"] = ""

    refused = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=body)

    assert refused.status_code == 422, refused.text
    assert [problem["loc"][-1] for problem in refused.json()["detail"]] == [field]
    assert "Lajing" not in refused.text  # nothing sent is repeated
    assert await _kept(service) == before


async def test_only_a_village_reports(service: AlertsUnderTest) -> None:
    before = await _kept(service)
    refused = await service.as_agency("polres-bangkalan", "POST", "/v1/reports", json=_report())

    assert refused.status_code == 403
    assert await _kept(service) == before


async def test_a_village_no_office_controls_is_told_so_and_nothing_is_kept(service: AlertsUnderTest) -> None:
    before = await _kept(service)
    await service.change_register(
        lambda document: register_variants.member(document, OFFICE).update(jurisdiction=["35.27"])
    )

    refused = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=_report())

    assert refused.status_code == 409
    assert "no immigration office" in refused.json()["detail"]
    assert await _kept(service) == before


async def test_a_photo_larger_than_the_api_limit_is_taken_on_the_reports_path_only(service: AlertsUnderTest) -> None:
    # Well over the 1 MiB every other path takes: a phone's photo (the padding is after the PNG's end, kept).
    large = images.png() + bytes(2 * 1024 * 1024)
    body = _report(photo_base64=base64.b64encode(large).decode())

    assert (await service.as_agency(VILLAGE, "POST", "/v1/reports", json=body)).status_code == 201
    other = await service.as_agency(
        VILLAGE,
        "POST",
        "/v1/alerts/00000000-0000-0000-0000-000000000000/acknowledge",
        json={"by": "x" * (2 * 1024 * 1024)},
    )
    assert other.status_code == 413


async def test_a_report_goes_with_the_last_of_its_alerts_when_their_time_is_over(service: AlertsUnderTest) -> None:
    sent = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=_report())
    assert sent.status_code == 201
    report_id = sent.json()["id"]
    retention = timedelta(days=365)

    async def left() -> tuple[int, int]:
        async with service.runtime.sessions() as session:
            reports = select(func.count()).where(village_reports.c.id == report_id)
            opened = select(func.count()).where(alerts.c.report_id == report_id)
            return int((await session.execute(reports)).scalar_one()), int((await session.execute(opened)).scalar_one())

    async def purged(after: timedelta) -> None:
        async with service.runtime.sessions() as session, session.begin():
            await lifecycle.purge(session, now=service.clock.now() + after, retention=retention)

    await purged(retention - timedelta(days=1))
    assert await left() == (1, 1)
    await purged(retention + timedelta(days=1))
    assert await left() == (0, 0)


async def test_a_report_sent_twice_with_its_ref_is_kept_once(service: AlertsUnderTest) -> None:
    before = await _kept(service)
    body = _report(client_ref=str(uuid.uuid4()))

    first = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=body)
    again = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=body)
    other = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=_report(client_ref=str(uuid.uuid4())))

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["offices"] == first.json()["offices"] == [OFFICE]
    assert other.json()["id"] != first.json()["id"]
    assert await _kept(service) == before + 2
    # The same ref with other words (edited after a timeout) is neither the first report nor a new one.
    edited = await service.as_agency(VILLAGE, "POST", "/v1/reports", json=body | {"what": "Sudah pergi tadi pagi."})
    assert edited.status_code == 422, edited.text
    assert [problem["loc"] for problem in edited.json()["detail"]] == [["body", "client_ref"]]
    assert await _kept(service) == before + 2
