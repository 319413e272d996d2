"""Visas apart from stay permits (issue 9, defect 4): a visa lets a person enter, a stay permit lets them stay;
an ITAS has a purpose."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.registry.conftest import Registry, permit
from timpora.common.events.payloads import Visa, VisaFamily


async def test_an_arrival_records_its_visa_and_the_permit_its_type_and_purpose(registry: Registry) -> None:
    arrived = await registry.arrive(visa={"index": "e23", "number": "v123"})
    assert arrived.status_code == 201, arrived.text
    fid = arrived.json()["foreigner_id"]
    assert arrived.json()["visa"] == {"index": "E23", "number": "V123"}

    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(purpose="investment"))

    assert issued.status_code == 201, issued.text
    assert issued.json()["permit"]["type"] == "itas"
    assert issued.json()["permit"]["purpose"] == "investment"


async def test_a_visa_on_arrival_is_a_visa_not_a_stay_permit(registry: Registry) -> None:
    fid = (await registry.new_foreigner(visa={"index": "B1"}))["foreigner_id"]
    before = await registry.outbox_rows(fid)

    refused = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visa-on-arrival", expires_on="2026-12-01")
    )
    itk = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", expires_on="2026-12-01")
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "type"]
    assert "visa on arrival is a visa (index B1)" in refused.json()["detail"][0]["msg"]
    assert itk.status_code == 201, itk.text
    assert itk.json()["permit"]["purpose"] is None
    assert itk.json()["visa"]["index"] == "B1"
    assert await registry.outbox_rows(fid) == before + 1


async def test_an_itas_needs_its_purpose_and_only_an_itas_or_itap_has_one(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    before = await registry.outbox_rows(fid)

    no_purpose = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(purpose=None))
    visit_with_purpose = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", purpose="work", expires_on="2026-12-01")
    )
    unknown = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(purpose="smuggling"))
    bad_visa = await registry.arrive(visa={"index": "Z9"})

    assert no_purpose.status_code == 422, no_purpose.text
    assert no_purpose.json()["detail"][0]["loc"] == ["body", "purpose"]
    assert visit_with_purpose.status_code == 422, visit_with_purpose.text
    assert visit_with_purpose.json()["detail"][0]["loc"] == ["body", "purpose"]
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "purpose"]
    assert "smuggling" not in unknown.text
    assert bad_visa.status_code == 422
    assert bad_visa.json()["detail"][0]["loc"][:3] == ["body", "visa", "index"]
    assert await registry.outbox_rows(fid) == before


async def test_a_new_entry_without_a_visa_keeps_no_visa_from_the_last_one(registry: Registry) -> None:
    first = await registry.new_foreigner(visa={"index": "C1", "number": "C-1"})
    fid = first["foreigner_id"]
    await registry.client.post(f"/v1/foreigners/{fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-10"})

    again = await registry.arrive(passport=first["passport"], arrived_on="2026-12-01", visa={"index": "A1"})

    assert again.status_code == 200, again.text
    assert again.json()["visa"] == {"index": "A1", "number": None}


@settings(max_examples=200)
@given(
    family=st.sampled_from("ABCDE"), number=st.integers(min_value=1, max_value=99), suffix=st.sampled_from(["", "A"])
)
def test_every_index_belongs_to_the_family_its_letter_names(family: str, number: int, suffix: str) -> None:
    visa = Visa(index=f"{family.lower()}{number}{suffix}")
    assert visa.index == f"{family}{number}{suffix}"
    expected = {
        "A": VisaFamily.VISA_EXEMPT,
        "B": VisaFamily.VISA_ON_ARRIVAL,
        "C": VisaFamily.VISIT,
        "D": VisaFamily.VISIT,
        "E": VisaFamily.LIMITED_STAY,
    }
    assert visa.family is expected[family]


@given(st.text(max_size=6).filter(lambda text: text.strip().upper()[:1] not in set("ABCDE")))
def test_an_index_of_no_family_is_refused(text: str) -> None:
    try:
        Visa(index=text)
    except ValidationError:
        return
    raise AssertionError(f"{text!r} was taken for a visa index")


async def test_a_visa_exempt_visit_is_not_extended_and_one_on_a_visa_on_arrival_only_once(registry: Registry) -> None:
    exempt = (await registry.new_foreigner(visa={"index": "A1"}))["foreigner_id"]
    voa = (await registry.new_foreigner(visa={"index": "B1"}))["foreigner_id"]
    ids = {}
    for fid in (exempt, voa):
        issued = await registry.client.post(
            f"/v1/foreigners/{fid}/permits", json=permit(type="visit", issued_on="2026-11-01", expires_on="2026-11-30")
        )
        ids[fid] = issued.json()["permit"]["permit_id"]

    a1 = await registry.client.post(
        f"/v1/foreigners/{exempt}/permits/{ids[exempt]}/extension", json={"expires_on": "2026-12-30"}
    )
    b1_once = await registry.client.post(
        f"/v1/foreigners/{voa}/permits/{ids[voa]}/extension", json={"expires_on": "2026-12-30"}
    )
    b1_twice = await registry.client.post(
        f"/v1/foreigners/{voa}/permits/{ids[voa]}/extension", json={"expires_on": "2027-01-29"}
    )

    assert a1.status_code == 409, a1.text
    assert b1_once.status_code == 200, b1_once.text
    assert b1_twice.status_code == 409, b1_twice.text
    assert "once" in b1_twice.json()["detail"][0]["msg"]
