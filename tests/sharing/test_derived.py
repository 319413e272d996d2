"""What the sharing service derives for a record: CSV cells an officer's spreadsheet cannot run."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from timpora.sharing.domain.derived import spreadsheet_safe

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@given(st.dictionaries(st.sampled_from(["sponsor_name", "occupation", "full_name"]), st.text(max_size=30)))
def test_no_csv_cell_starts_a_formula_and_every_other_is_left_as_it_is(row: dict[str, str]) -> None:
    safe = spreadsheet_safe(row)
    for name, value in row.items():
        if value.startswith(FORMULA_STARTS):
            assert safe[name] == "'" + value
        else:
            assert safe[name] == value


def test_a_sponsor_named_like_a_formula_is_shown_as_typed() -> None:
    row = {"sponsor_name": '=HYPERLINK("http://evil.example","x")', "days_overstayed": -3, "version": 2}
    assert spreadsheet_safe(row) == {
        "sponsor_name": '\'=HYPERLINK("http://evil.example","x")',
        "days_overstayed": -3,
        "version": 2,
    }
