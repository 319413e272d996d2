"""Structured JSON logs on stdout, one object per line.

Only a fixed set of ``extra`` keys is ever written (ids, counts, names of things): anything else a
caller passes is dropped, so a payload with personal data cannot reach the logs by accident.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

SAFE_EXTRA_KEYS = frozenset(
    {
        "agency_id",
        "attempt",
        "consumer",
        "count",
        "duration_ms",
        "event_id",
        "event_type",
        "foreigner_id",
        "offset",
        "partition",
        "reason",
        "seconds",
        "service",
        "status",
        "step",
        "topic",
        "topics",
        "url",
    }
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in SAFE_EXTRA_KEYS & record.__dict__.keys():
            entry[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it happened; not its message, which may quote input.
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(entry, default=str)


def configure_logging(
    service: str, *, level: str = "INFO", json_output: bool = True, stream: TextIO | None = None
) -> None:
    """Logs to stdout (a service's output stream); commands pass stderr so their stdout stays theirs."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if json_output:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every connection hiccup at ERROR/WARNING and alembic every step at INFO: keep
    # their warnings, drop the chatter.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
