"""No CSV the system writes holds a cell a spreadsheet would run as a formula (CSV injection)."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from timpora.alerts.domain.notices import _notice_list
from timpora.common import spreadsheets
from timpora.common.spreadsheets import FORMULA_STARTS, DictWriter, safe_cell, safe_row

ROOT = Path(__file__).resolve().parents[2]
#: Text an outsider could type, weighted towards what starts a formula.
TEXT = st.one_of(st.text(max_size=30), st.tuples(st.sampled_from(FORMULA_STARTS), st.text(max_size=30)).map("".join))


@given(TEXT)
def test_text_that_would_start_a_formula_is_prefixed_and_other_text_is_left_as_it_is(value: str) -> None:
    safe = safe_cell(value)

    assert isinstance(safe, str)
    assert not safe.startswith(FORMULA_STARTS)
    assert safe == ("'" + value if value.startswith(FORMULA_STARTS) else value)


@given(st.dictionaries(st.sampled_from(["full_name", "sponsor_name", "reason"]), TEXT), st.integers(), st.floats())
def test_a_written_row_reads_back_with_no_formula_cell_and_numbers_left_as_numbers(
    text: dict[str, str], count: int, fee: float
) -> None:
    row: dict[str, object] = {**text, "days_overstayed": count, "fee": fee, "missing": None}
    out = io.StringIO()
    writer = DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)

    (read,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    for name, value in text.items():
        assert not read[name].startswith(FORMULA_STARTS)
        assert read[name] == safe_cell(value)  # the cell as typed, after at most one apostrophe
    # A number we computed is written as a number, negative or not: it is not text anyone typed.
    assert read["days_overstayed"] == str(count)
    assert read["fee"] == str(fee)
    assert safe_row(row)["days_overstayed"] == count


def test_a_sponsor_named_like_a_formula_is_shown_as_typed() -> None:
    out = io.StringIO()
    spreadsheets.writer(out).writerow(['=HYPERLINK("http://evil.example","x")', -3, "-3", "@SUM(A1)"])

    assert next(csv.reader(io.StringIO(out.getvalue()))) == [
        '\'=HYPERLINK("http://evil.example","x")',
        "-3",
        "'-3",
        "'@SUM(A1)",
    ]


def test_the_alert_emails_notice_list_is_neutralised_too() -> None:
    sent = {
        "alerts": [
            {
                "message_id": "m1",
                "message": "=cmd|' /C calc'!A0",
                "alert_id": "a1",
                "event": {"type": "+permit.expired"},
                "severity": "critical",
            }
        ],
        "not_shown": [
            {"message_id": "m2", "message": "-x", "alert_id": "a2", "event_type": "@x", "severity": "\tinfo"},
        ],
    }

    rows = list(csv.reader(io.StringIO(_notice_list(sent))))

    assert all(not cell.startswith(FORMULA_STARTS) for row in rows for cell in row)
    assert rows[1][1] == "'=cmd|' /C calc'!A0"


def _csv_writers(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "csv"
        and node.attr in {"writer", "DictWriter"}
    ]


def test_every_csv_the_system_writes_goes_through_the_one_neutralising_writer() -> None:
    # The one exception: the generator writes import files, read back by the importer (see its comment).
    allowed = {
        ROOT / "libs/common/src/timpora/common/spreadsheets.py",
        ROOT / "services/registry/src/timpora/registry/bulk/generator.py",
    }
    sources = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    assert sources
    offenders = {
        str(path.relative_to(ROOT)): lines for path in sources if path not in allowed and (lines := _csv_writers(path))
    }
    assert offenders == {}
