"""Logs are JSON, and only known-safe fields reach them."""

from __future__ import annotations

import json
import logging
import sys

from timpora.common.logging import JsonFormatter


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
