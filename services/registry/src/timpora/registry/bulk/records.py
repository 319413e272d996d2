"""One import row: the flat columns of a CSV line or a JSON object, validated by the same commands the
API uses, so an imported record obeys exactly the rules a registered one does."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError, model_validator

from timpora.common.events.envelope import describe_validation_error
from timpora.registry.domain.commands import ArrivalIn, Command, PermitIn, ResidenceIn

COLUMNS = (
    "full_name",
    "sex",
    "date_of_birth",
    "nationality",
    "passport_number",
    "passport_country",
    "passport_expires_on",
    "occupation",
    "sponsor_name",
    "sponsor_kind",
    "arrival_port",
    "arrived_on",
    "visa_index",
    "visa_number",
    "permit_number",
    "permit_type",
    "permit_purpose",
    "permit_issued_on",
    "permit_expires_on",
    "residence_address",
    "residence_village_code",
    "residence_since",
)


class ImportRecord(Command):
    arrival: ArrivalIn
    permit: PermitIn | None = None
    residence: ResidenceIn | None = None

    @model_validator(mode="after")
    def _residence_after_arrival(self) -> ImportRecord:
        if self.residence is not None and self.residence.since < self.arrival.arrived_on:
            raise ValueError("residence_since is before arrived_on")
        return self


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    record: ImportRecord | None
    reason: str | None


def _nested(row: dict[str, Any]) -> dict[str, Any]:
    """Flat columns to the commands' shape; empty cells are absent values."""
    value = {key: (None if cell in ("", None) else cell) for key, cell in row.items()}
    unknown = set(value) - set(COLUMNS)
    if unknown:
        raise ValueError(_unknown_columns(set(value), unknown))
    nested: dict[str, Any] = {
        "arrival": {
            "full_name": value.get("full_name"),
            "sex": value.get("sex"),
            "date_of_birth": value.get("date_of_birth"),
            "nationality": value.get("nationality"),
            "passport": {
                "number": value.get("passport_number"),
                "issuing_country": value.get("passport_country") or value.get("nationality"),
                "expires_on": value.get("passport_expires_on"),
            },
            "port": value.get("arrival_port"),
            "arrived_on": value.get("arrived_on"),
        }
    }
    if value.get("occupation") is not None:
        nested["arrival"]["occupation"] = value["occupation"]
    if value.get("visa_index") is not None:
        nested["arrival"]["visa"] = {"index": value["visa_index"], "number": value.get("visa_number")}
    if value.get("sponsor_name") is not None:
        nested["arrival"]["sponsor"] = {"name": value["sponsor_name"], "kind": value.get("sponsor_kind") or "employer"}
    if value.get("permit_number") is not None:
        nested["permit"] = {
            "number": value["permit_number"],
            "type": value.get("permit_type"),
            "purpose": value.get("permit_purpose"),
            "issued_on": value.get("permit_issued_on"),
            "expires_on": value.get("permit_expires_on"),
        }
    if value.get("residence_village_code") is not None:
        nested["residence"] = {
            "address": value.get("residence_address"),
            "village_code": value["residence_village_code"],
            "since": value.get("residence_since"),
        }
    return nested


def _unknown_columns(names: set[str], unknown: set[str]) -> str:
    """The reason for columns not in the format. They are named only when some of the names are the format's: a
    file without a header row has its first person's values read as the names, and those are not quoted."""
    if unknown == names:
        return "no header: none of the first line's cells names a column of the format"
    return f"unknown column(s): {', '.join(sorted(unknown))}"


def _reason(error: ValidationError) -> str:
    # Field names as the file has them (arrival.passport.number -> passport_number would be nicer, but the
    # nested path is exact and maps one to one onto the columns).
    return describe_validation_error(error)


def parse(number: int, row: dict[str, Any]) -> Line:
    try:
        return Line(number, ImportRecord.model_validate(_nested(row)), None)
    except ValidationError as error:
        return Line(number, None, _reason(error))
    except ValueError as error:
        return Line(number, None, str(error))


def read_csv(handle: IO[str]) -> Iterator[Line]:
    # Cells beyond the header's go under the key None (DictReader's restkey): such a row is one bad row, reported by
    # its line and the count, and the import goes on. Its cells are not quoted: they are someone's data.
    reader = csv.DictReader(handle)
    for row in reader:
        extra = row.pop(None, None)
        if extra is not None:
            header = len(reader.fieldnames or ())
            yield Line(reader.line_num, None, f"{header + len(extra)} cells where the header has {header}")
            continue
        yield parse(reader.line_num, row)


def read_jsonl(handle: IO[str]) -> Iterator[Line]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            yield Line(number, None, f"not JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(row, dict):
            yield Line(number, None, "not a JSON object")
            continue
        yield parse(number, {key: None if value is None else str(value) for key, value in row.items()})


def read(path: Path, handle: IO[str]) -> Iterator[Line]:
    return read_jsonl(handle) if path.suffix in {".jsonl", ".ndjson"} else read_csv(handle)
