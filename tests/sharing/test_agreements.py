"""Data-sharing agreements, held by the members of the register: the shipped register loads, broken files are
refused with the reason, validity windows and jurisdictions mean what they say, and redaction keeps only allowed
fields."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sharing.shipped import variant
from tests.support.factories import snapshots
from timpora.common import register
from timpora.common.config_files import ConfigFileError
from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.register.agreements import Agreement
from timpora.common.register.fields import FIELD_NAMES, PATHS, redact


def test_the_shipped_agreements_are_those_of_bangkalans_members_that_are_told_of_people() -> None:
    shipped = register.load(register.DEFAULT_REGISTER)
    loaded = shipped.agreements

    assert set(loaded) == {
        "pemkab-bangkalan",
        "polres-bangkalan",
        "kecamatan-arosbaya",
        "disnaker-bangkalan",
        "desa-lajing",
        "kejari-bangkalan",
        "kodim-0829",
        "dukcapil-bangkalan",
        "satpolpp-bangkalan",
        "kemenag-bangkalan",
    }
    assert "passport_number" in loaded["polres-bangkalan"].allowed
    assert "passport_number" not in loaded["pemkab-bangkalan"].allowed
    assert loaded["desa-lajing"].allowed == {
        "full_name",
        "nationality",
        "occupation",
        "sponsor_name",  # named in every overstay alert: the sponsor answers for the stay (UU 6/2011 art. 63)
        "presence",
        "residence_village_code",
        "permit_type",
        "permit_expires_on",
        "permit_status",
    }
    assert "passport_number" not in loaded["desa-lajing"].allowed
    assert loaded["desa-lajing"].covers("35.26.05.2003")
    assert not loaded["desa-lajing"].covers("35.26.05.2004")
    assert loaded["pemkab-bangkalan"].covers("35.26.05.2004")
    assert not loaded["pemkab-bangkalan"].covers("35.27.01.2001")
    assert not loaded["pemkab-bangkalan"].covers(None)
    # Every member but immigration, the data's controller, which holds no agreement.
    assert set(shipped.members) - set(loaded) == {"kanim-pamekasan"}
    assert shipped.members["kanim-pamekasan"].controller
    # The agreement says neither whose it is nor where, when it covers the member's whole jurisdiction.
    assert loaded["desa-lajing"].agency_name == shipped.members["desa-lajing"].name
    assert loaded["pemkab-bangkalan"].jurisdiction == shipped.members["pemkab-bangkalan"].jurisdiction == ["35.26"]


def test_each_new_member_gets_the_minimum_its_role_in_timpora_needs() -> None:
    loaded = register.load(register.DEFAULT_REGISTER).agreements
    new = ("kejari-bangkalan", "kodim-0829", "dukcapil-bangkalan", "satpolpp-bangkalan", "kemenag-bangkalan")
    for agency_id in new:
        agreement = loaded[agency_id]
        assert "TIMPORA" in agreement.purpose, agency_id
        assert agreement.jurisdiction == ["35.26"], agency_id
        assert agreement.version == 1, agency_id
        assert agreement.is_valid_on(date(2026, 11, 29)), agency_id
        # Nobody but the police (and, for identity, the prosecutor) gets a passport; only the civil registry,
        # which registers residents, a date of birth; none the permit's number.
        assert "permit_number" not in agreement.allowed, agency_id
        assert ("date_of_birth" in agreement.allowed) == (agency_id == "dukcapil-bangkalan"), agency_id
        assert ("passport_number" in agreement.allowed) == (agency_id == "kejari-bangkalan"), agency_id
    assert loaded["kejari-bangkalan"].permit_types is None
    assert "permit.expired" in loaded["kejari-bangkalan"].event_types
    assert "residence_address" not in loaded["kejari-bangkalan"].allowed
    assert loaded["dukcapil-bangkalan"].permit_types == ["itas", "itap"]
    assert "foreigner.residence-reported" in loaded["dukcapil-bangkalan"].event_types
    assert loaded["kemenag-bangkalan"].permit_types == ["itas"]
    assert {"occupation", "sponsor_name"} <= loaded["kemenag-bangkalan"].allowed
    assert "foreigner.arrived" in loaded["kodim-0829"].event_types
    assert "sponsor_name" not in loaded["satpolpp-bangkalan"].allowed


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (["full_name", "nationality"], "fields must include presence"),
        (["full_name", "presence", "permit_expires_on"], "must include permit_status"),
    ],
)
def test_an_agreement_that_would_show_someone_gone_as_present_is_refused(
    tmp_path: Path, fields: list[str], reason: str
) -> None:
    # Without presence a departed person reads as present; an expiry date without the permit's status
    # reads as an overstay when the permit ended with its holder's departure.
    with pytest.raises(ConfigFileError, match=reason):
        register.load(variant(tmp_path, "pemkab-bangkalan", version=5, fields=fields))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("members: [{id: x}]", "members.0.id"),
        ("members: not-a-list", "members"),
        ("agreements: []", "agreements: Extra inputs are not permitted"),  # the old agreements file
        ("{[", "while parsing"),
    ],
)
def test_a_broken_file_is_refused_with_where_and_why(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "register.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigFileError, match=reason):
        register.load(path)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"fields": ["full_name", "shoe_size"]}, "members.1.agreement.fields"),
        ({"jurisdiction": ["35.99"]}, "members.1.agreement.jurisdiction"),
        ({"jurisdiction": ["35.27"]}, "agreement.jurisdiction 35.27 is outside the member's jurisdiction"),
        ({"event_types": ["permit.teleported"]}, "unknown event type"),
        ({"valid_to": "2024-01-01"}, "valid_to is before valid_from"),
        ({"agency_id": "polres-bangkalan"}, r"agreement.agency_id must be the member's own \(id\)"),
        ({"fields": ["full_name", "full_name"]}, "listed twice"),
    ],
)
def test_each_rule_of_an_agreement_is_checked(tmp_path: Path, changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigFileError, match=reason):
        register.load(variant(tmp_path, "pemkab-bangkalan", **changes))


def test_one_agency_holds_one_agreement(tmp_path: Path) -> None:
    # Two members under one id would be two agreements for one agency.
    with pytest.raises(ConfigFileError, match="more than one member with id polres-bangkalan"):
        register.load(variant(tmp_path, "pemkab-bangkalan", member={"id": "polres-bangkalan"}))


def test_the_controller_holds_no_agreement(tmp_path: Path) -> None:
    shipped = register.load(register.DEFAULT_REGISTER)
    terms = shipped.agreements["pemkab-bangkalan"].model_dump(mode="json", exclude={"agency_id", "agency_name"})
    path = variant(tmp_path, "kanim-pamekasan", member={"agreement": terms})

    with pytest.raises(ConfigFileError, match="the controller processes its own data and has no data-sharing"):
        register.load(path)


def test_an_agreement_shares_only_inside_its_validity_window(tmp_path: Path) -> None:
    path = variant(tmp_path, "pemkab-bangkalan", valid_from="2026-01-01", valid_to="2026-06-30")
    agreement = register.load(path).agreements["pemkab-bangkalan"]

    assert not agreement.is_valid_on(date(2025, 12, 31))
    assert agreement.is_valid_on(date(2026, 1, 1))
    assert agreement.is_valid_on(date(2026, 6, 30))
    assert not agreement.is_valid_on(date(2026, 7, 1))


#: Names an agreement could never list: a record has no such field, whatever the set it is redacted to holds.
_NOT_FIELDS = st.sampled_from(["passport", "permit", "overstay_fee", "days_covered", "foreigner", "record"])


@given(snapshots(), st.frozensets(st.sampled_from(FIELD_NAMES)), st.frozensets(_NOT_FIELDS, max_size=2))
def test_redaction_keeps_exactly_the_allowed_fields(
    snapshot: ForeignerSnapshot, allowed: frozenset[str], not_fields: frozenset[str]
) -> None:
    record = redact(snapshot, allowed | not_fields)
    document = snapshot.model_dump(mode="json")

    assert list(record) == ["foreigner_id", "version", *(name for name in FIELD_NAMES if name in allowed)]
    assert (record["foreigner_id"], record["version"]) == (str(snapshot.foreigner_id), snapshot.version)
    for name in allowed - {"birth_year"}:
        # Each field's value is what its path reaches in the snapshot's JSON form, None where the path stops early.
        value: Any = document
        for key in PATHS[name]:
            value = value.get(key) if isinstance(value, dict) else None
        assert record[name] == value, name
    if "birth_year" in allowed:
        assert record["birth_year"] == snapshot.date_of_birth.year
    # And the nested ones read off the model itself, not through the same paths.
    permit = snapshot.permit
    expected = {
        "permit_fee_paid_days": None
        if permit is None or permit.overstay_fee is None
        else permit.overstay_fee.days_covered,
        "permit_purpose": None if permit is None or permit.purpose is None else permit.purpose.value,
        "visa_index": None if snapshot.visa is None else snapshot.visa.index,
        "passport_number": snapshot.passport.number,
        "residence_village_code": None if snapshot.residence is None else snapshot.residence.village_code,
        "stay_check_out": None
        if snapshot.stay is None or snapshot.stay.check_out is None
        else str(snapshot.stay.check_out),
    }
    for name in allowed & set(expected):
        assert record[name] == expected[name], name
    if "passport_number" not in allowed:
        assert snapshot.passport.number not in str(record.values())


async def test_every_agreement_version_is_kept_and_a_silent_change_is_refused(
    database_settings: dict[str, object], tmp_path: Path
) -> None:
    from timpora.common.db.engine import make_engine, make_session_factory  # noqa: PLC0415
    from timpora.common.db.migrations import upgrade  # noqa: PLC0415
    from timpora.common.settings import DatabaseSettings  # noqa: PLC0415
    from timpora.sharing.domain import registry  # noqa: PLC0415

    settings = database_settings["sharing"]
    assert isinstance(settings, DatabaseSettings)
    engine = make_engine(settings, application_name="test", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    sessions = make_session_factory(engine)
    agency = f"test-{uuid.uuid4().hex[:8]}"

    def loaded(**changes: Any) -> list[Agreement]:
        path = variant(tmp_path, "pemkab-bangkalan", member={"id": agency}, **changes)
        return list(register.load(path).agreements.values())

    first = loaded(version=1)
    silently_changed = loaded(version=1, fields=["full_name", "presence"])
    properly_changed = loaded(version=2, fields=["full_name", "presence"])
    try:
        async with sessions() as session, session.begin():
            assert [a.agency_id for a in await registry.record(session, first) if a.agency_id == agency] == [agency]
        async with sessions() as session, session.begin():
            assert [a for a in await registry.record(session, first) if a.agency_id == agency] == []
        with pytest.raises(
            registry.AgreementChangedWithoutNewVersionError, match=f"{agency} changed but is still version 1"
        ):
            async with sessions() as session, session.begin():
                await registry.record(session, silently_changed)
        async with sessions() as session, session.begin():
            assert [a.version for a in await registry.record(session, properly_changed) if a.agency_id == agency] == [2]
    finally:
        await engine.dispose()


def test_a_running_service_refuses_a_silent_change_and_keeps_the_register_in_force(tmp_path: Path) -> None:
    # What a service reads at every request: the register of a file is read again when the file changes; a change
    # of terms under the same version is refused whole, and the register in force stays until a proper change.
    path = variant(tmp_path, "desa-lajing", name="live.yaml")
    book = register.RegisterBook(path)
    before = book.current().agreements["desa-lajing"]

    def read_again(until: Callable[[register.Register], bool], **changes: Any) -> register.Register:
        """The register in force once the book has read the file rewritten with ``changes`` (it looks at the
        file at most twice a second)."""
        variant(tmp_path, "desa-lajing", name="live.yaml", **changes)
        deadline = time.monotonic() + 30
        while not until(found := book.current()):
            assert time.monotonic() < deadline, "the book did not read the changed file"
            time.sleep(0.05)
        return found

    silently = read_again(lambda _: book.refused is not None, fields=["full_name", "presence"])
    refused = book.refused
    properly = read_again(
        lambda found: found.agreements["desa-lajing"].version > before.version,
        fields=["full_name", "presence"],
        version=before.version + 1,
    )

    assert silently.agreements["desa-lajing"] == before
    assert refused is not None
    assert "members.desa-lajing.agreement: the terms changed but the version is still" in refused
    assert properly.agreements["desa-lajing"].allowed == {"full_name", "presence"}
    assert book.refused is None
