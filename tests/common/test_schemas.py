"""The exported JSON Schemas are current and describe what the contract emits."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given, settings

from tests.support.factories import events
from timpora.common.events import REGISTRY_EVENT_SPECS, CloudEvent, encode
from timpora.common.events.payloads import Contract
from timpora.common.events.schemas import DEFAULT_DIR, json_schema, main, stale


def test_the_committed_schema_files_match_the_contract() -> None:
    assert stale(DEFAULT_DIR) == [], "run: timpora-schemas export"


def test_check_fails_on_a_stale_directory(tmp_path: Path) -> None:
    assert main(["export", str(tmp_path)]) == 0
    assert main(["check", str(tmp_path)]) == 0
    victim = next(tmp_path.iterdir())
    victim.write_text("{}", encoding="utf-8")

    assert main(["check", str(tmp_path)]) == 1


@settings(max_examples=50)
@given(events())
def test_every_event_validates_against_its_published_schema(event: CloudEvent[Contract]) -> None:
    schema = json_schema(event.spec)

    jsonschema.validate(json.loads(encode(event).value), schema)


def test_every_registry_schema_requires_the_snapshot_and_names_its_dataschema() -> None:
    for spec in REGISTRY_EVENT_SPECS:
        schema = json_schema(spec)
        assert "foreigner" in schema["required"]
        assert schema["$id"] == spec.dataschema
