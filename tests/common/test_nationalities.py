"""Nationalities as printed in passports."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from timpora.common import nationalities
from timpora.common.types import Nationality


@pytest.mark.parametrize(
    ("given_code", "normalised"), [("CHN", "CHN"), ("aus", "AUS"), (" deu ", "DEU"), ("D", "DEU"), ("XXA", "XXA")]
)
def test_iso_and_icao_codes_are_accepted_and_normalised(given_code: str, normalised: str) -> None:
    assert TypeAdapter(Nationality).validate_python(given_code) == normalised


@pytest.mark.parametrize("code", ["XYZ", "CN", "CHINA", "", "C1N"])
def test_other_codes_are_refused_with_a_reason(code: str) -> None:
    with pytest.raises(ValidationError, match="ISO 3166-1 alpha-3"):
        TypeAdapter(Nationality).validate_python(code)


def test_every_listed_code_has_a_name() -> None:
    codes = nationalities.all_codes()
    assert len(codes) > 240
    assert all(nationalities.name_of(code) for code in codes)
