"""The register of members: one file, refused whole when wrong, re-read when it changes, and checked by the
``timpora-register`` command before it is deployed."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import register as register_variants
from timpora.common import register
from timpora.common.config_files import ConfigFileError
from timpora.common.register import RegisterBook, cli

_SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"


def _variant(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    document = register_variants.shipped()
    change(document)
    return register_variants.write(tmp_path / "register.yaml", document)


def _touch(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _village(document: dict[str, Any]) -> dict[str, Any]:
    return register_variants.member(document, "desa-lajing")


def _office(agency_id: str, area: list[str]) -> dict[str, Any]:
    return {"id": agency_id, "name": agency_id, "kind": "immigration", "controller": True, "jurisdiction": area}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: _village(d)["agreement"].update(jurisdiction=["35.26"]), "outside the member's jurisdiction"),
        (lambda d: _village(d).update(controller=True), "the controller processes its own data"),
        (lambda d: _village(d)["agreement"].update(agency_id="polres-bangkalan"), "agreement.agency_id must be"),
        (lambda d: _village(d)["agreement"]["fields"].remove("presence"), "fields must include presence"),
        (lambda d: d["members"].append(_village(d)), "more than one member with id desa-lajing"),
        # A member made a controller would receive everything of its area, unrecorded as a disclosure.
        (lambda d: _village(d).pop("agreement") and _village(d).update(controller=True), "only an immigration office"),
        # Two offices controlling one place: whose staff change a person there would be ambiguous.
        (
            lambda d: d["members"].append(_office("kanim-surabaya", ["35.26.05", "35.78"])),
            "kanim-pamekasan and kanim-surabaya both control 35.26.05:",
        ),
        (lambda d: d["members"].append(_office("kanim-jatim", ["35"])), "both control 35.26, 35.27, 35.28, 35.29:"),
        (
            lambda d: _village(d)["channels"].update(webhook={"url": "https://x.example/h", "secret": _SECRET}),
            "a secret is never written in the register",
        ),
        # Grouping: a burst's later messages cannot come sooner than its first, and every message shows something.
        (lambda d: _village(d).update(grouping={"wait_s": 60, "interval_s": 30}), "interval_s must be at least"),
        (lambda d: _village(d).update(grouping={"email": {"max_shown": 0}}), "max_shown"),
        (lambda d: _village(d).update(grouping={"sms": {"grouped": False}}), "sms"),
        (lambda d: _village(d).update(grouping={"wait_s": -1}), "wait_s"),
    ],
)
def test_a_register_with_an_error_is_refused_naming_it(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    with pytest.raises(ConfigFileError, match=reason):
        register.load(_variant(tmp_path, change))


def test_an_agreement_under_a_member_is_that_members_and_covers_its_jurisdiction_by_default() -> None:
    village = register.load(register.DEFAULT_REGISTER).members["desa-lajing"]
    assert village.agreement is not None
    assert (village.agreement.agency_id, village.agreement.jurisdiction) == ("desa-lajing", village.jurisdiction)


def test_grouping_has_defaults_and_may_be_set_per_member_and_channel(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        register_variants.member(document, "polres-bangkalan")["grouping"] = {
            "wait_s": 10,
            "webhook": {"grouped": False},
        }

    members = register.load(_variant(tmp_path, change)).members
    village, police = members["desa-lajing"].grouping, members["polres-bangkalan"].grouping
    assert (village.wait_s, village.interval_s) == (30, 300)
    assert village.email.grouped
    assert village.email.max_shown == 20
    assert (police.wait_s, police.interval_s) == (10, 300)
    assert not police.webhook.grouped
    assert police.webhook.max_shown == 100  # the webhook's own default cap, not a common one
    assert police.email.grouped


def test_a_changed_file_is_read_again_and_a_broken_one_leaves_the_register_in_force(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda _: None)
    book = RegisterBook(path)
    first = book.current()
    _variant(tmp_path, lambda d: _village(d)["agreement"].update(version=5, fields=["full_name", "presence"]))
    _touch(path)
    book._checked = 0.0  # the next read looks at the file (a service does within half a second)
    narrowed = book.current()
    assert narrowed.digest != first.digest
    assert narrowed.agreements["desa-lajing"].fields == ["full_name", "presence"]

    path.write_text("members: [", encoding="utf-8")
    _touch(path)
    book._checked = 0.0
    assert book.current() is narrowed
    assert book.refused is not None
    assert str(path) in book.refused


def test_new_terms_under_the_same_version_are_refused_while_running(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda _: None)
    book = RegisterBook(path)
    shipped = book.current()
    _variant(tmp_path, lambda d: _village(d)["agreement"].update(fields=["full_name", "presence"]))
    _touch(path)
    book._checked = 0.0
    assert book.current() is shipped
    assert book.refused is not None
    assert "desa-lajing.agreement: the terms changed but the version is still 4" in book.refused


def test_the_command_checks_and_shows_a_register(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check"]) == 0
    assert "11 members, 10 agreements" in capsys.readouterr().out
    assert cli.main(["show"]) == 0
    shown = capsys.readouterr().out
    assert "kanim-pamekasan (immigration): the controller" in shown
    assert "desa-lajing (village): agreement v4" in shown
    broken = _variant(tmp_path, lambda d: _village(d).update(jurisdiction=["99.99"]))
    assert cli.main(["check", str(broken)]) == 1
    assert "members.10.jurisdiction.0" in capsys.readouterr().err


def test_check_reads_the_services_variable_and_warns_of_agreements_not_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lapsed = _variant(tmp_path, lambda d: _village(d)["agreement"].update(valid_to="2025-06-30"))
    monkeypatch.setenv("TIMPORA_REGISTER_FILE", str(lapsed))

    assert cli.main(["check"]) == 0

    out = capsys.readouterr().out
    assert "warning: the agreement of desa-lajing is not in force today: it will get nothing" in out
    assert f"{lapsed}: 11 members, 10 agreements (9 in force today): OK" in out


def test_a_service_started_on_a_broken_register_says_where_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from timpora.sharing.main import SERVICE  # noqa: PLC0415 - only this test starts a service's main

    broken = _variant(tmp_path, lambda d: _village(d).update(jurisdiction=["99.99"]))
    monkeypatch.setenv("TIMPORA_REGISTER_FILE", str(broken))

    assert SERVICE.main(["serve"]) == 2

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"timpora-sharing: {broken}: ")
    assert "members.10.jurisdiction.0" in line


def test_several_immigration_offices_each_control_their_own_area(tmp_path: Path) -> None:
    loaded = register.load(
        _variant(tmp_path, lambda d: d["members"].append(_office("kanim-surabaya", ["35.78", "35.15"])))
    )
    assert [office.id for office in loaded.offices] == ["kanim-pamekasan", "kanim-surabaya"]
    assert loaded.office("kanim-surabaya") is not None
    assert loaded.office("pemkab-bangkalan") is None  # a member, not a controller
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    surabaya, pamekasan = loaded.members["kanim-surabaya"], loaded.members["kanim-pamekasan"]
    # Each receives, as processing, only what is about its own area: never the other office's people.
    for office, ours, theirs in (
        (surabaya, "35.78.01.1001", "35.26.05.2003"),
        (pamekasan, "35.26.05.2003", "35.78.01.1001"),
    ):
        assert office.receives("foreigner.arrived", None, ours, guest=False, moment=moment)
        assert not office.receives("foreigner.arrived", None, theirs, guest=False, moment=moment)
