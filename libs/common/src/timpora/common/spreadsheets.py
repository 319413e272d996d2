"""Every CSV the system writes is opened by someone in a spreadsheet: no cell of it may run as a formula.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken by Excel,
LibreOffice or Google Sheets for a formula (CSV injection: a sponsor named ``=HYPERLINK(...)`` becomes a
link that sends the sheet away). Such a cell is prefixed with an apostrophe, which spreadsheets show as
typed text and which the OWASP guidance recommends; nothing else is changed.

Only text is prefixed. A number (``int``, ``float``, ``Decimal``, a ``bool``) or ``None`` is written by
us from a value we computed or a column that is numeric by construction (a count, a day count, a fee): a
negative number there is a number, not something an outsider typed, and prefixing it would turn it into
text the officer can no longer add up. Anything that came in as text (a name, an address, a reason, a
query) is a ``str`` by then and is always prefixed, even ``"-5"``.

Use :func:`writer` and :class:`DictWriter` in place of :mod:`csv`'s: they neutralise every cell they write.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any

#: What a spreadsheet takes for the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet shows as typed: text that would start a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cell of ``row`` through :func:`safe_cell`."""
    return {name: safe_cell(value) for name, value in row.items()}


class _Writer:
    """:func:`csv.writer`, every cell through :func:`safe_cell`."""

    def __init__(self, handle: IO[str], **options: Any) -> None:  # noqa: ANN401 - csv's own options
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: IO[str], **options: Any) -> _Writer:  # noqa: ANN401 - csv's own options
    return _Writer(handle, **options)


if TYPE_CHECKING:  # csv.DictWriter is generic to type checkers only
    _DictWriterBase = csv.DictWriter[str]
else:
    _DictWriterBase = csv.DictWriter


class DictWriter(_DictWriterBase):
    """:class:`csv.DictWriter`, every cell through :func:`safe_cell` (the header's names are ours)."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:  # noqa: ANN401 - csv's own return
        # The cells straight into a list, as csv.DictWriter builds it, without a neutralised copy of the dict
        # first: an export writes 100,000 rows.
        if self.extrasaction == "raise" and (extra := rowdict.keys() - set(self.fieldnames)):
            raise ValueError(f"dict contains fields not in fieldnames: {', '.join(map(repr, sorted(extra)))}")
        return self.writer.writerow([safe_cell(rowdict.get(key, self.restval)) for key in self.fieldnames])

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
