"""Logs are JSON, and only known-safe fields reach them."""

from __future__ import annotations

import json
import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from timpora.common.logging import JsonFormatter, PlainFormatter


def _format(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("timpora.test", logging.INFO, __file__, 1, "event processed", None, None)
    record.__dict__.update(extra)
    result: dict[str, object] = json.loads(JsonFormatter("registry").format(record))
    return result


def test_a_log_line_is_one_json_object_with_the_service() -> None:
    line = _format(event_id="e-1", offset=7)

    assert line["message"] == "event processed"
    assert line["service"] == "registry"
    assert line["event_id"] == "e-1"
    assert line["offset"] == 7


def test_fields_outside_the_safe_list_never_reach_the_log() -> None:
    line = _format(full_name="Li Wei", passport_number="E12345678", event_id="e-2")

    assert "full_name" not in line
    assert "passport_number" not in line
    assert "Li Wei" not in json.dumps(line)


def test_an_exception_is_logged_by_type_not_by_message() -> None:
    passport = "E1234" + "5678"  # built at run time, so the traceback's source line does not show it
    try:
        raise ValueError(f"passport {passport} is invalid")  # noqa: TRY301 - the point is a raised exception
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(JsonFormatter("alerts").format(record))

    assert line["error"] == "ValueError"
    assert "E12345678" not in json.dumps(line)
    assert "test_logging.py" in str(line["traceback"])


PASSPORT = "E1234" + "5678"  # built at run time, so no traceback's source line shows it


def _json_line(record: logging.LogRecord) -> str:
    return JsonFormatter("registry").format(record)


def _plain_line(record: logging.LogRecord) -> str:
    return PlainFormatter().format(record)


def _records(error: BaseException) -> list[logging.LogRecord]:
    """The ways an exception reaches a log: our own calls, and what FastStream and asyncio write."""
    info = (type(error), error, error.__traceback__)
    return [
        logging.LogRecord("timpora.x", logging.ERROR, __file__, 1, "import failed", None, info),
        logging.LogRecord("timpora.x", logging.WARNING, __file__, 1, "import failed: %s", (error,), None),
        logging.LogRecord("timpora.x", logging.ERROR, __file__, 1, "failed: %r (%d)", (error, 3), info),
        # FastStream's subscriber: f"{exc_type.__name__}: {exc_val}" with exc_info.
        logging.LogRecord("faststream", logging.ERROR, __file__, 1, f"{type(error).__name__}: {error}", None, info),
        # asyncio's default handler: a task's repr, with its exception's repr inside.
        logging.LogRecord(
            "asyncio",
            logging.ERROR,
            __file__,
            1,
            f"Task exception was never retrieved\nfuture: <Task exception={error!r}>",
            None,
            info,
        ),
    ]


#: Part of every personal value below, and of nothing else a log line holds.
MARKER = "zq9"


def _text_of(line: str, output: str) -> str:
    """What a reader sees: a JSON line's values decoded (json.dumps escapes what is not ASCII), or the plain line."""
    return " ".join(str(value) for value in json.loads(line).values()) if output == "json" else line


@given(
    st.text(max_size=40),
    st.sampled_from([ValueError, KeyError, RuntimeError, LookupError]),
    st.sampled_from(["json", "plain"]),
)
def test_an_exception_whose_message_holds_a_personal_value_logs_only_its_type_and_frames(
    value: str, kind: type[Exception], output: str
) -> None:
    secret = f"passport {PASSPORT} of {MARKER}{value}"
    try:
        try:
            raise OSError(f"connection to {secret} lost")  # noqa: TRY301 - the point is a chain of raised exceptions
        except OSError as cause:
            raise kind(secret) from cause
    except Exception as error:  # noqa: BLE001 - caught only to be logged
        raised = error
    format_line = _json_line if output == "json" else _plain_line

    for record in _records(raised):
        seen = _text_of(format_line(record), output)
        assert PASSPORT not in seen
        assert MARKER not in seen
        if record.exc_info:
            # The type, and the frames of the exception and of the one it was raised from.
            assert kind.__name__ in seen
            assert "OSError" in seen
            assert seen.count("test_logging.py") >= 2  # one frame each
