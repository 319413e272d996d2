"""The rejects report of an import: one row per rejected line, its number and the reason (which names the field
and never quotes the value). It is about people, so only its owner may read it: the file is created with mode
0600 (an existing one is replaced, not reused with whatever mode it had) and never widened afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from timpora.common import spreadsheets
from timpora.registry.bulk.importer import Rejects

HEADER = ("line", "reason")
MODE = 0o600


@contextmanager
def rejects_file(path: Path) -> Iterator[Rejects]:
    """Writes rejected lines to ``path``, created readable by its owner only; yields the importer's callback."""
    # Unlinked first: O_CREAT keeps an existing file's mode, and O_EXCL also refuses a planted symlink.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    with open(descriptor, "w", encoding="utf-8", newline="") as out:  # noqa: PTH123 - a descriptor, not a path
        writer = spreadsheets.writer(out)  # the report is opened in a spreadsheet, like every CSV we write
        writer.writerow(HEADER)
        yield lambda number, reason: writer.writerow((number, reason))
