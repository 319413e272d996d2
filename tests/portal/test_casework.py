"""Immigration's casework through the portal, on the real registry served over HTTP: finding a person of the office's
area, their record, and each change the desk makes to it (a permit issued, extended, converted and revoked; a
departure; the overstay's fee; a deportation order, the deportation, a re-entry ban) under the officer's own name. The
registry's refusals are shown beside their fields with everything typed kept; a record changed by someone else since
the form was opened records nothing; a form sent twice records once; another office's person, a person who is no one,
and another role all get "not found"."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from playwright.async_api import Browser

from tests.portal.conftest import (
    START,
    Desk,
    csrf_of,
    enrolled,
    first_login,
    registry_away,
    second_factor,
    served,
)
from tests.portal.test_accessibility import axe_installed, violations
from tests.portal.test_browser import SCREENSHOTS
from tests.registry.conftest import arrival, permit
from timpora.common.settings import DatabaseSettings

pytestmark = pytest.mark.timeout(240)
LAJING = "35.26.05.2003"
SURABAYA = "35.78.01.1001"  # another office's area: not kanim-pamekasan's (35.26 to 35.29)
TODAY = START.date()  # the registry's clock: 1 December 2026 (WIB)

__all__ = ["axe_installed"]  # a fixture of test_accessibility, used here


async def _person(
    staff: AsyncClient, *, village: str = LAJING, expires: date | None = None, name: str | None = None
) -> dict[str, Any]:
    """A person present in ``village``, with an ITAS ending on ``expires`` if given, recorded by a registry operator."""
    made = await staff.post("/v1/arrivals", json=arrival(full_name=name or f"Kasus {uuid.uuid4().hex[:6]}"))
    assert made.status_code == 201, made.text
    person: dict[str, Any] = made.json()
    path = f"/v1/foreigners/{person['foreigner_id']}"
    lived = await staff.post(
        f"{path}/residence", json={"address": "Jl. Raya 1", "village_code": village, "since": "2026-11-01"}
    )
    assert lived.status_code == 200, lived.text
    person = lived.json()
    if expires is not None:
        issued = await staff.post(f"{path}/permits", json=permit(issued_on="2026-01-05", expires_on=str(expires)))
        assert issued.status_code == 201, issued.text
        person = issued.json()
    return person


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, name
    return found.group(1)


async def _send(
    office: AsyncClient, foreigner_id: str, action: str, fields: dict[str, str], *, twice: bool = False
) -> Response:
    """The form of ``action`` opened, filled with ``fields`` and sent (``twice``: a double click), as a browser
    would; the last answer."""
    form = await office.get(f"/desk/foreigners/{foreigner_id}/{action}")
    assert form.status_code == 200, form.text
    hidden = {name: _hidden(form.text, name) for name in ("csrf_token", "attempt", "version", "permit_id")}
    answer = await office.post(f"/desk/foreigners/{foreigner_id}/{action}", data=hidden | fields)
    if twice:
        again = await office.post(f"/desk/foreigners/{foreigner_id}/{action}", data=hidden | fields)
        assert (answer.status_code, answer.headers.get("location")) == (
            again.status_code,
            again.headers.get("location"),
        )
    return answer


async def _history(staff: AsyncClient, foreigner_id: str) -> list[dict[str, Any]]:
    record = await staff.get(f"/v1/foreigners/{foreigner_id}")
    assert record.status_code == 200, record.text
    history: list[dict[str, Any]] = record.json()["history"]
    return history


@pytest.mark.usefixtures("axe_installed")
async def test_immigration_finds_a_person_by_passport_and_issues_a_permit_after_the_registry_refuses_a_date(
    desk: Desk, browser: Browser
) -> None:
    portal = desk.portal
    async with desk.staff() as staff:
        person = await _person(staff)
    passport, foreigner_id = person["passport"]["number"], person["foreigner_id"]
    number = "ITAS" + uuid.uuid4().hex[:8].upper()
    async with served(portal.app, started=True) as url:  # type: ignore[arg-type]
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)).new_page()
        _, one_time = await portal.officer("kanim-pamekasan", "immigration", name="imigrasi.kasus")
        await first_login(page, url, "imigrasi.kasus", one_time)
        await second_factor(page, url, portal.clock)
        await page.get_by_role("link", name="Cari orang asing").click()
        await page.locator("#s-passport").fill(passport.lower())
        await page.get_by_role("button", name="Cari").click()
        await page.get_by_role("link", name=person["full_name"]).click()
        await page.get_by_role("heading", name=person["full_name"]).wait_for()
        assert await violations(page) == []

        await page.get_by_role("link", name="Terbitkan izin tinggal").click()
        await page.locator("#a-number").fill(number)
        await page.locator("#a-type").select_option("itas")
        await page.locator("#a-purpose").select_option("work")
        await page.locator("#a-issued_on").fill("2026-12-01")
        await page.locator("#a-expires_on").fill("2026-11-01")
        await page.get_by_role("button", name="Simpan").click()

        # The registry's words, beside the date it refused; everything typed still there; nothing recorded.
        problem = page.locator("#p-expires_on")
        await problem.wait_for()
        assert "expires_on must be after issued_on" in await problem.inner_text()
        assert await page.locator("#a-expires_on").get_attribute("aria-invalid") == "true"
        assert await page.locator("#a-number").input_value() == number
        assert await page.locator("#a-type").input_value() == "itas"
        assert await desk.version(foreigner_id) == person["version"]
        await page.screenshot(path=SCREENSHOTS / "portal-permit-desktop.png", full_page=True)
        assert await violations(page) == []

        await page.locator("#a-expires_on").fill("2027-12-01")
        await page.get_by_role("button", name="Simpan").click()
        await page.locator("#done").wait_for()
        assert await page.locator("#done").inner_text() == "Izin tinggal diterbitkan."
        assert await page.locator('dd[data-field="permit_number"]').inner_text() == number
        assert "1 Desember 2027" in await page.locator('dd[data-field="permit_expires_on"]').inner_text()
        assert "imigrasi.kasus (portal)" in await page.locator("table.records").inner_text()
        await page.screenshot(path=SCREENSHOTS / "portal-record-desktop.png", full_page=True)
        assert await violations(page) == []
    async with desk.staff() as staff:
        history = await _history(staff, foreigner_id)
    assert [entry["event_type"] for entry in history][-1] == "permit.issued"
    assert history[-1]["actor"] == "imigrasi.kasus (portal)"


async def test_each_change_of_the_desk_is_recorded_under_the_officers_name(desk: Desk) -> None:
    """A permit's whole life (issued, extended, converted, revoked), then a departure; on another person, an overstay
    of 3 days settled by its fee; on a third, 75 days over, the deportation order, the deportation and the ban."""
    portal = desk.portal
    async with desk.staff() as staff:
        plain = await _person(staff)
        three_over = await _person(staff, expires=TODAY - timedelta(days=3))
        long_over = await _person(staff, expires=TODAY - timedelta(days=75))
    steps: list[tuple[dict[str, Any], str, dict[str, str]]] = [
        (plain, "permit", {"number": "K" + uuid.uuid4().hex[:8], "type": "visit", "issued_on": "2026-12-01",
                           "expires_on": "2026-12-30"}),
        (plain, "extension", {"expires_on": "2027-01-29"}),
        (plain, "conversion", {"number": "T" + uuid.uuid4().hex[:8], "type": "itas", "purpose": "family",
                               "issued_on": "2026-12-01", "expires_on": "2027-12-01", "sponsor_name": "Siti Aminah",
                               "sponsor_kind": "family"}),
        (plain, "revocation", {"reason": "Bekerja tanpa izin"}),
        (plain, "residence", {"residence_address": "Jl. Pesisir 4", "residence_village_code": "35.26.05.2001",
                              "residence_since": "2026-11-25"}),
        (plain, "departure", {"port": "Bandara Juanda", "departed_on": "2026-12-01"}),
        (three_over, "overstay-fee", {"amount_idr": "3000000", "receipt_number": "PNBP-778", "paid_on": "2026-12-01"}),
        (three_over, "extension", {"expires_on": "2027-03-01"}),
        (long_over, "enforcement", {"action": "deportation-order", "on": "2026-12-01", "reference": "W15.IMI-1/2026"}),
        (long_over, "deportation", {"port": "Bandara Juanda", "deported_on": "2026-12-01", "reference": "W15-2"}),
        (long_over, "ban", {"since": "2026-12-01", "until": "2027-06-01", "reference": "W15-3"}),
    ]  # fmt: skip
    async with portal.browser() as office:
        username = await enrolled(portal, office)
        for person, action, fields in steps:
            done = await _send(office, person["foreigner_id"], action, fields, twice=action == "conversion")
            assert done.status_code == 303, (action, done.text)
            assert done.headers["location"] == f"/desk/foreigners/{person['foreigner_id']}?done={action}"
        # Someone no longer here can be banned, nothing else; a revoked permit is no longer extended.
        for person, action, offered in (
            (plain, "departure", 404),
            (plain, "extension", 404),
            (long_over, "ban", 200),
            (long_over, "permit", 404),
        ):
            assert (await office.get(f"/desk/foreigners/{person['foreigner_id']}/{action}")).status_code == offered
        shown = await office.get(f"/desk/foreigners/{long_over['foreigner_id']}")
        assert "Penangkalan tercatat" not in shown.text  # no ?done: no message
        assert 'data-field="ban"' in shown.text
        assert "W15-3" in shown.text
    async with desk.staff() as staff:
        for person, count in ((plain, 6), (three_over, 2), (long_over, 3)):
            history = await _history(staff, person["foreigner_id"])
            # Each change once (the conversion sent twice is one), the officer's.
            actors = [entry["actor"] for entry in history]
            assert actors.count(f"{username} (portal)") == count
            assert actors[-count:] == [f"{username} (portal)"] * count
        record = (await staff.get(f"/v1/foreigners/{plain['foreigner_id']}")).json()["foreigner"]
        assert record["presence"] == "departed"
        assert (await staff.get(f"/v1/foreigners/{long_over['foreigner_id']}")).json()["foreigner"]["reentry_ban"][
            "reference"
        ] == "W15-3"


async def test_a_record_changed_since_the_form_was_opened_records_nothing_and_a_form_sent_twice_records_once(
    desk: Desk,
) -> None:
    portal = desk.portal
    async with desk.staff() as staff:
        person = await _person(staff, expires=TODAY + timedelta(days=20))
    foreigner_id = person["foreigner_id"]
    async with portal.browser() as office:
        await enrolled(portal, office)
        form = await office.get(f"/desk/foreigners/{foreigner_id}/extension")
        opened = {
            "csrf_token": csrf_of(form),
            "attempt": _hidden(form.text, "attempt"),
            "version": _hidden(form.text, "version"),
            "permit_id": _hidden(form.text, "permit_id"),
            "expires_on": "2027-06-01",
        }
        async with desk.staff() as staff:  # meanwhile, another officer moves the person
            moved = await staff.post(
                f"/v1/foreigners/{foreigner_id}/residence",
                json={"address": "Jl. Lain 2", "village_code": "35.26.05.2001", "since": "2026-11-20"},
            )
            assert moved.status_code == 200, moved.text
        version = await desk.version(foreigner_id)

        # Sent without its date first: refused here, and the form that comes back is still the one opened before the
        # change (its version), so that the change is caught when it is sent complete.
        incomplete = await office.post(f"/desk/foreigners/{foreigner_id}/extension", data=opened | {"expires_on": ""})
        assert incomplete.status_code == 422
        assert _hidden(incomplete.text, "version") == opened["version"]
        stale = await office.post(f"/desk/foreigners/{foreigner_id}/extension", data=opened)
        assert stale.status_code == 409, stale.text
        assert "residence-reported" in stale.text  # the change that came between, shown
        assert "diubah orang lain" in stale.text
        assert 'value="2027-06-01"' in stale.text  # what was typed, kept
        assert await desk.version(foreigner_id) == version  # nothing recorded

        # Sent again from the page that came back (it carries the record's version now): recorded, once, however
        # often it is sent.
        again = opened | {name: _hidden(stale.text, name) for name in ("version", "attempt", "permit_id")}
        first = await office.post(f"/desk/foreigners/{foreigner_id}/extension", data=again)
        second = await office.post(f"/desk/foreigners/{foreigner_id}/extension", data=again)
        assert (first.status_code, second.status_code) == (303, 303), second.text
        assert await desk.version(foreigner_id) == version + 1

        missing = await office.post(
            f"/desk/foreigners/{foreigner_id}/revocation", data={**again, "expires_on": "", "reason": ""}
        )
        assert missing.status_code == 422
        assert 'id="p-reason"' in missing.text
        forged = await office.post(f"/desk/foreigners/{foreigner_id}/extension", data={**again, "csrf_token": "x"})
        assert forged.status_code == 403
        assert await desk.version(foreigner_id) == version + 1


async def test_another_offices_person_no_one_and_another_role_are_not_found(desk: Desk) -> None:
    portal = desk.portal
    async with desk.staff() as staff:
        elsewhere = await _person(staff, village=SURABAYA)
        without_permit = await _person(staff)
    async with portal.browser() as office:
        await enrolled(portal, office)
        missing = await office.get(f"/desk/foreigners/{uuid.uuid4()}")
        for path in (
            f"/desk/foreigners/{elsewhere['foreigner_id']}",
            f"/desk/foreigners/{elsewhere['foreigner_id']}/departure",
            "/desk/foreigners/not-an-id",
            f"/desk/foreigners/{without_permit['foreigner_id']}/extension",  # no permit to extend
            f"/desk/foreigners/{without_permit['foreigner_id']}/no-such-change",
        ):
            answer = await office.get(path)
            assert (answer.status_code, answer.text) == (404, missing.text), path
        assert missing.status_code == 404
        sent = await office.post(
            f"/desk/foreigners/{elsewhere['foreigner_id']}/departure",
            data={
                "csrf_token": csrf_of(await office.get("/")),
                "version": "1",
                "port": "X",
                "departed_on": "2026-12-01",
            },
        )
        assert sent.status_code == 404
        found = await office.get("/desk/foreigners", params={"passport": elsewhere["passport"]["number"]})
        assert elsewhere["foreigner_id"] not in found.text
        assert "Tidak ada orang asing yang cocok." in found.text
    async with desk.staff() as staff:
        assert (await _history(staff, elsewhere["foreigner_id"]))[-1]["event_type"] == "foreigner.residence-reported"

    for agency, role in (("pemkab-bangkalan", "officer"), ("desa-lajing", "village")):
        async with portal.browser() as other:
            await portal.ready(other, agency, role)
            assert (await other.get(f"/desk/foreigners/{without_permit['foreigner_id']}")).status_code == 404
            assert (await other.get("/desk/foreigners")).status_code == 404


async def test_a_registry_that_does_not_answer_loses_nothing_typed(
    database_settings: dict[str, DatabaseSettings],
) -> None:
    async for portal in registry_away(database_settings):
        async with portal.browser() as office:
            await enrolled(portal, office)
            person = str(uuid.uuid4())
            assert (await office.get(f"/desk/foreigners/{person}")).status_code == 503
            answer = await office.post(
                f"/desk/foreigners/{person}/revocation",
                data={
                    "csrf_token": csrf_of(await office.get("/")),
                    "version": "4",
                    "reason": "Bekerja tanpa izin",
                    "permit_id": str(uuid.uuid4()),
                },
            )
            assert answer.status_code == 503
            assert "Registri tidak menjawab" in answer.text
            assert 'value="Bekerja tanpa izin"' in answer.text
            assert _hidden(answer.text, "version") == "4"
