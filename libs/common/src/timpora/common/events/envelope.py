"""CloudEvents 1.0 envelopes in Kafka binary mode: attributes in ``ce_*`` headers, JSON data in the value.

Decoding never trusts its input: every way a record can be wrong is reported as an
:class:`EventDecodeError` whose ``reason`` names the field at fault and never echoes the values
(a reason ends up in dead-letter headers and logs, and values here are personal data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

from pydantic import ValidationError

from timpora.common.events.catalog import EventSpec, spec_for, spec_for_ce_type
from timpora.common.events.payloads import Contract

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
CONTENT_TYPE_HEADER = "content-type"
_REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_specversion")

# Covariant: an event about an arrival is an event (the dataclass is frozen, so this is sound).
DataT_co = TypeVar("DataT_co", bound=Contract, covariant=True)
DataT = TypeVar("DataT", bound=Contract)


@dataclass(frozen=True, slots=True)
class CloudEvent(Generic[DataT_co]):
    id: str
    source: str
    type: str
    subject: str | None
    time: datetime
    dataschema: str
    data: DataT_co
    specversion: str = SPECVERSION
    datacontenttype: str = CONTENT_TYPE

    @property
    def spec(self) -> EventSpec:
        return spec_for(self.data)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What goes on (or came off) the wire: the partition key, the JSON value and the headers."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def headers_dict(self) -> dict[str, str]:
        return {key: value.decode("utf-8", "replace") for key, value in self.headers}


class EventDecodeError(ValueError):
    """A record that is not a valid event of a known type; ``reason`` says why, without personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_event(
    data: DataT,
    *,
    source: str,
    subject: str | None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[DataT]:
    spec = spec_for(data)
    return CloudEvent(
        id=event_id or str(uuid4()),
        source=source,
        type=spec.ce_type,
        subject=subject,
        time=time or datetime.now(UTC),
        dataschema=spec.dataschema,
        data=data,
    )


def attribute_headers(event: CloudEvent[Contract]) -> dict[str, str]:
    """The event's attributes as binary-mode Kafka headers (``ce_*`` and ``content-type``), as text."""
    headers = {
        "ce_specversion": event.specversion,
        "ce_id": event.id,
        "ce_source": event.source,
        "ce_type": event.type,
        "ce_time": _format_time(event.time),
        "ce_dataschema": event.dataschema,
        CONTENT_TYPE_HEADER: event.datacontenttype,
    }
    if event.subject is not None:
        headers["ce_subject"] = event.subject
    return headers


def encode(event: CloudEvent[Contract], *, key: str | None = None) -> KafkaRecord:
    """The Kafka record for ``event``, keyed by ``key`` (default: the subject, i.e. the foreigner's id)."""
    partition_key = key if key is not None else event.subject
    return KafkaRecord(
        key=None if partition_key is None else partition_key.encode(),
        value=event.data.model_dump_json().encode(),
        headers=tuple((name, value.encode()) for name, value in attribute_headers(event).items()),
    )


def decode(record: KafkaRecord) -> CloudEvent[Contract]:
    attributes = _attributes(record)
    spec = spec_for_ce_type(attributes["ce_type"])
    if spec is None:
        raise EventDecodeError(f"unknown event type {_quoted(attributes['ce_type'], _EVENT_TYPE)}")
    if attributes["ce_specversion"] != SPECVERSION:
        raise EventDecodeError(f"unsupported CloudEvents specversion {_quoted(attributes['ce_specversion'], _VERSION)}")
    # An empty content-type is how some producers (FastStream for raw bytes) say "none given".
    content_type = attributes.get(CONTENT_TYPE_HEADER) or CONTENT_TYPE
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise EventDecodeError(f"unsupported content-type {_quoted(content_type, _MEDIA_TYPE)}")
    if "ce_dataschema" in attributes and attributes["ce_dataschema"] != spec.dataschema:
        raise EventDecodeError(f"dataschema does not match type '{spec.ce_type}'")
    data = _data(record.value, spec)
    return CloudEvent(
        id=attributes["ce_id"],
        source=attributes["ce_source"],
        type=spec.ce_type,
        subject=attributes.get("ce_subject"),
        time=_parse_time(attributes.get("ce_time")),
        dataschema=spec.dataschema,
        data=data,
    )


# A dead-letter reason quotes a header only when it has the shape of what belongs there: a reason travels in
# headers and logs, and a header may hold anything a producer put in it.
_EVENT_TYPE = re.compile(r"[a-z0-9]+(\.[a-z0-9-]+){1,8}")
_VERSION = re.compile(r"\d{1,3}(\.\d{1,3}){0,2}")
_MEDIA_TYPE = re.compile(r"[a-z]{1,20}/[a-z0-9.+-]{1,60}(; ?[a-z-]{1,20}=[a-z0-9-]{1,20})?", re.IGNORECASE)


def _quoted(value: str, shape: re.Pattern[str]) -> str:
    return f"'{value}'" if shape.fullmatch(value) else "(not shown: not the shape of one)"


def _attributes(record: KafkaRecord) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name, raw in record.headers:
        if name.startswith("ce_") or name == CONTENT_TYPE_HEADER:
            try:
                attributes[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise EventDecodeError(f"header '{name}' is not UTF-8") from None
    missing = [name for name in _REQUIRED_HEADERS if not attributes.get(name)]
    if missing:
        raise EventDecodeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    # A subject present but empty (or a header with no value at all) would key every copy of the event by nothing.
    if attributes.get("ce_subject") == "":
        raise EventDecodeError("header 'ce_subject' has no value")
    return attributes


def _data(value: bytes, spec: EventSpec) -> Contract:
    # Parsed and validated in one pass by pydantic-core, straight from the bytes.
    try:
        return spec.model.model_validate_json(value)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        if first["type"] == "json_invalid":
            raise EventDecodeError(f"value is not JSON ({first['msg']})") from None
        raise EventDecodeError(f"invalid '{spec.name}' data: {describe_validation_error(error)}") from None


#: Input shorter than this is not looked for in a message: "M" or "12" would match words, not echoes.
_ECHO_MIN_LENGTH = 3


def _leaves(value: object) -> Iterator[str]:
    """The text of every scalar in ``value`` (a field's input, or a whole object's for a rule across fields)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)


def _echoes(message: str, given: object) -> bool:
    folded = message.casefold()
    return any(len(leaf) >= _ECHO_MIN_LENGTH and leaf.casefold() in folded for leaf in _leaves(given))


def validation_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each problem as ``{"loc", "msg", "type"}``, never with the value given: not as ``input``, and not inside the
        message either (a validator's message may quote what it refused; such a message is replaced by one that says
        what is wrong without it). ``errors``: pydantic's (``ValidationError.errors()``, FastAPI's
    ``RequestValidationError.errors()``). Every answer and reason built from a validation error goes through here."""
    problems = []
    for problem in errors:
        message = str(problem["msg"])
        if _echoes(message, problem.get("input")):
            message = f"invalid value ({problem['type']})"
        problems.append({"loc": list(problem["loc"]), "msg": message, "type": problem["type"]})
    return problems


def describe_validation_error(error: ValidationError, *, limit: int = 5, quoting: bool = False) -> str:
    """``loc: message`` for each problem, without the offending input values (see :func:`validation_problems`).

    ``quoting``: the messages as the validators wrote them, values and all; only for an operator's own
    configuration file (the register, the rules), which holds no personal data and whose author needs the value."""
    errors = error.errors(include_input=quoting, include_url=False)
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or '(root)'}: {problem['msg']}"
        for problem in (errors if quoting else validation_problems(errors))
    ]
    more = len(problems) - limit
    return "; ".join(problems[:limit]) + (f"; and {more} more" if more > 0 else "")


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("CloudEvent time must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str | None) -> datetime:
    if not value:
        raise EventDecodeError("missing CloudEvents header: ce_time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventDecodeError("header 'ce_time' is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise EventDecodeError("header 'ce_time' has no time zone offset")
    return parsed
