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


_SHORTEST_MESSAGE = 3


def _chain(error: BaseException | None) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or during, each once."""
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _without_messages(text: str, errors: list[BaseException]) -> str:
    """``text`` with every exception's message (and repr) replaced by its type's name."""
    for error in errors:
        # The repr first: it holds the message. A message of a character or two would match words, not an echo.
        for shown in (repr(error), str(error)):
            if len(shown) >= _SHORTEST_MESSAGE:
                text = text.replace(shown, type(error).__name__)
    return text


def safe_message(record: logging.LogRecord) -> str:
    """The record's message without any exception's message, which may quote input (a name, a passport number).

    An exception passed as an argument (``log.warning("failed: %s", error)``) is shown by its type; one the message
    was already formatted with — FastStream logs ``f"{type}: {error}"``, asyncio a task's repr with its
    exception, both with ``exc_info`` — has its message cut out of the text."""
    message = str(record.msg)
    if record.args:
        args = record.args
        if isinstance(args, tuple):
            args = tuple(type(arg).__name__ if isinstance(arg, BaseException) else arg for arg in args)
        try:
            message = message % args
        except (TypeError, ValueError):
            message = record.getMessage()
    exc_info = record.exc_info
    return _without_messages(message, _chain(exc_info[1] if exc_info else None))


def safe_traceback(error: BaseException) -> str:
    """Where ``error`` happened, and where each exception it was raised from or during did: types and frames only,
    never a message."""
    parts = []
    for link in reversed(_chain(error)):
        parts.append(f"{type(link).__module__}.{type(link).__qualname__}\n")
        parts.extend(traceback.format_tb(link.__traceback__))
    return "".join(parts)


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
            "message": safe_message(record),
        }
        for key in SAFE_EXTRA_KEYS & record.__dict__.keys():
            entry[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[1] is not None:
            # The exception's type and where it happened; not its message, which may quote input.
            entry["error"] = type(record.exc_info[1]).__name__
            entry["traceback"] = safe_traceback(record.exc_info[1])
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """Plain text (``log_json`` off, for a terminal): the same rule, exceptions by type and frames only."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return self._style.format(logging.makeLogRecord(record.__dict__ | {"message": safe_message(record)}))

    def formatException(self, ei: Any) -> str:  # noqa: N802, ANN401 - logging's name and type
        error = ei[1] if isinstance(ei, tuple) else None
        return "" if error is None else safe_traceback(error).rstrip("\n")


def configure_logging(
    service: str, *, level: str = "INFO", json_output: bool = True, stream: TextIO | None = None
) -> None:
    """Logs to stdout (a service's output stream); commands pass stderr so their stdout stays theirs."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if json_output:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every connection hiccup at ERROR/WARNING and alembic every step at INFO: keep
    # their warnings, drop the chatter.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request's URL at INFO, its query string included: a search for a person by name or passport
    # number (the portal's, reading the sharing service) must not end up in a log file.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
