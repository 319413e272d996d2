"""The server-drawn charts: every bar and column is its number to scale, every label is text (escaped, whatever it
holds), and what is drawn adds up to the counts it was given."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from timpora.portal import charts

SVG = "{http://www.w3.org/2000/svg}"
labels = st.text(min_size=1, max_size=30).filter(lambda text: text.isprintable())
counts = st.dictionaries(
    st.sampled_from(["CHN", "IND", "KOR", "MYS", "AUS", "USA", "DEU", "NLD", "JPN"]),
    st.integers(min_value=0, max_value=500),
    max_size=9,
)


def _parsed(chart: charts.Chart) -> ET.Element:
    return ET.fromstring(str(chart.svg))  # noqa: S314 - the chart this test just drew


@given(rows=st.lists(st.tuples(labels, counts), min_size=1, max_size=8))
def test_each_bar_is_its_rows_total_to_scale_and_its_label_is_kept_as_text(
    rows: list[tuple[str, dict[str, int]]],
) -> None:
    chart = charts.stacked_bars(
        rows, title="Orang <asing>", description="per kecamatan", others="lainnya", chart_id="c"
    )

    root = _parsed(chart)
    largest = max(sum(values.values()) for _, values in rows) or 1
    bars = root.findall(f"{SVG}rect[{SVG}title]")
    for index, (label, values) in enumerate(rows):
        top = index * charts.ROW_HEIGHT
        drawn = [bar for bar in bars if float(bar.get("y", "-1")) == top]
        assert (
            abs(sum(float(bar.get("width", "0")) for bar in drawn) - charts.BAR_WIDTH * sum(values.values()) / largest)
            < 0.01
        )
        assert all((bar.findtext(f"{SVG}title") or "").startswith(f"{label} · ") for bar in drawn)
    texts = [element.text for element in root.iter(f"{SVG}text")]
    for label, values in rows:
        assert label in texts
        assert str(sum(values.values())) in texts
    assert root.findtext(f"{SVG}title") == "Orang <asing>"
    assert root.get("role") == "img"


@given(rows=st.lists(counts, min_size=1, max_size=8))
def test_at_most_six_series_are_told_apart_and_the_rest_add_up_as_others(rows: list[dict[str, int]]) -> None:
    series = charts.main_series(rows, "lainnya")

    assert len(series) <= charts.MAX_SERIES + 1
    assert len(set(series)) == len(series)
    named = {name for row in rows for name in row}
    assert ("lainnya" in series) == (len(named) > charts.MAX_SERIES + 1)
    for row in rows:
        assert sum(charts.folded(row, series, "lainnya")) == sum(row.values())


@given(
    groups=st.lists(
        st.tuples(labels, st.tuples(st.none() | st.integers(0, 400), st.none() | st.integers(0, 400))),
        min_size=1,
        max_size=12,
    )
)
def test_each_column_is_its_number_to_scale_and_one_not_given_is_not_drawn(
    groups: list[tuple[str, tuple[int | None, int | None]]],
) -> None:
    chart = charts.grouped_columns(
        groups, series=["Kedatangan", "Keberangkatan"], title="t", description="d", chart_id="f"
    )

    root = _parsed(chart)
    largest = max((value or 0 for _, values in groups for value in values), default=0) or 1
    columns = root.findall(f"{SVG}rect[{SVG}title]")
    given_values = [
        (label, name, value)
        for label, values in groups
        for name, value in zip(["Kedatangan", "Keberangkatan"], values, strict=True)
        if value is not None
    ]
    assert len(columns) == len(given_values)
    for column, (label, name, value) in zip(columns, given_values, strict=True):
        assert column.findtext(f"{SVG}title") == f"{label} · {name}: {value}"
        assert abs(float(column.get("height", "0")) - 160 * value / largest) < 0.01
