"""Charts drawn on the server as SVG: no script, no chart library, nothing fetched; a phone scales them to its width.

Each chart is an image with a title and a description a screen reader reads, and the page gives the same numbers as a
table beside it. Colours come from one palette that reads apart for the common colour-blindnesses (Okabe-Ito)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

#: Okabe and Ito's palette, darkest first: each distinguishable under deuteranopia and protanopia.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999")
WIDTH = 640
LABEL_WIDTH = 190
BAR_WIDTH = 380
ROW_HEIGHT = 28
BAR_HEIGHT = 18
LEGEND_ROW = 22
#: The largest number of series a chart tells apart; the rest are summed as one ("others").
MAX_SERIES = len(PALETTE) - 1


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Markup
    #: The series in the order drawn, with their colours (the legend).
    legend: tuple[tuple[str, str], ...]


def main_series(rows: Sequence[Mapping[str, int]], others: str) -> list[str]:
    """The series drawn on their own: the largest over all rows, at most :data:`MAX_SERIES`; ``others`` if any are
    left, last."""
    totals: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            totals[name] = totals.get(name, 0) + value
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    if len(ranked) <= MAX_SERIES + 1:
        return ranked
    return [*ranked[:MAX_SERIES], others]


def folded(row: Mapping[str, int], series: Sequence[str], others: str) -> list[int]:
    shown = {name for name in series if name != others}
    values = [row.get(name, 0) for name in series if name != others]
    if others in series:
        values.append(sum(value for name, value in row.items() if name not in shown))
    return values


def _text(x: float, y: float, words: str, *, anchor: str = "start", css: str = "") -> str:
    kind = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{kind}>{escape(words)}</text>'


def _legend(series: Sequence[str], top: float) -> tuple[list[str], float]:
    parts: list[str] = []
    x, y = 0.0, top
    for index, name in enumerate(series):
        width = 24 + 8 * len(name)
        if x > 0 and x + width > WIDTH:
            x, y = 0.0, y + LEGEND_ROW
        parts += [
            f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="12" height="12" fill="{PALETTE[index]}"/>',
            _text(x + 16, y, name),
        ]
        x += width + 12
    return parts, y + LEGEND_ROW


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]], *, title: str, description: str, others: str, chart_id: str
) -> Chart:
    """One horizontal bar per row (a kecamatan), split by series (nationalities), scaled to the largest row; the
    row's total at its end."""
    series = main_series([values for _, values in rows], others)
    largest = max((sum(values.values()) for _, values in rows), default=0) or 1
    parts: list[str] = []
    for index, (label, values) in enumerate(rows):
        top = index * ROW_HEIGHT
        parts.append(_text(LABEL_WIDTH - 8, top + BAR_HEIGHT - 4, label, anchor="end"))
        x = float(LABEL_WIDTH)
        for name, colour, value in zip(series, PALETTE, folded(values, series, others), strict=False):
            if value:
                width = BAR_WIDTH * value / largest
                parts.append(
                    f'<rect x="{x:.3f}" y="{top}" width="{width:.3f}" height="{BAR_HEIGHT}" fill="{colour}">'
                    f"<title>{escape(label)} · {escape(name)}: {value}</title></rect>"
                )
                x += width
        parts.append(_text(x + 6, top + BAR_HEIGHT - 4, str(sum(values.values())), css="n"))
    legend, height = _legend(series, len(rows) * ROW_HEIGHT + 18)
    return Chart(_svg(chart_id, title, description, [*parts, *legend], height), _pairs(series))


def grouped_columns(
    groups: Sequence[tuple[str, Sequence[int | None]]],
    *,
    series: Sequence[str],
    title: str,
    description: str,
    chart_id: str,
) -> Chart:
    """Columns side by side for each group (a month: arrivals, departures), scaled to the largest; each column's
    number above it. A value of None (not in the agreement) is not drawn."""
    plot_height, base = 160.0, 180.0
    largest = max((value or 0 for _, values in groups for value in values), default=0) or 1
    slot = WIDTH / max(len(groups), 1)
    column = min(28.0, (slot - 16) / max(len(series), 1))
    parts: list[str] = [f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}" class="axis"/>']
    for index, (label, values) in enumerate(groups):
        left = index * slot + (slot - column * len(series)) / 2
        for offset, (colour, value) in enumerate(zip(PALETTE, values, strict=False)):
            if value is None:
                continue
            height = plot_height * value / largest
            x = left + offset * column
            tip = f"{escape(label)} · {escape(series[offset])}: {value}"
            box = f'x="{x:.3f}" y="{base - height:.3f}" width="{column - 2:.3f}" height="{height:.3f}"'
            parts += [
                f'<rect {box} fill="{colour}"><title>{tip}</title></rect>',
                _text(x + (column - 2) / 2, base - height - 4, str(value), anchor="middle", css="n"),
            ]
        parts.append(_text(index * slot + slot / 2, base + 18, label, anchor="middle"))
    legend, height = _legend(series, base + 44)
    return Chart(_svg(chart_id, title, description, [*parts, *legend], height), _pairs(series))


def _pairs(series: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple(zip(series, PALETTE, strict=False))


def _svg(chart_id: str, title: str, description: str, parts: list[str], height: float) -> Markup:
    return Markup(  # noqa: S704 - every text in it went through escape() above
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(description)}</desc>'
        f"{''.join(parts)}</svg>"
    )
