"""CloudEvents in Kafka binary mode: what goes in comes out, and every bad record says why."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.factories import events
from timpora.common.events import CloudEvent, EventDecodeError, KafkaRecord, decode, encode
from timpora.common.events.catalog import EVENT_SPECS
from timpora.common.events.payloads import Contract


@given(events())
def test_an_encoded_event_decodes_to_the_same_event(event: CloudEvent[Contract]) -> None:
    decoded = decode(encode(event))

    assert decoded == event


@given(events())
def test_the_key_is_the_subject_and_attributes_travel_as_ce_headers(event: CloudEvent[Contract]) -> None:
    record = encode(event)

    assert record.key == event.subject.encode()  # type: ignore[union-attr]
    headers = record.headers_dict()
    assert headers["ce_id"] == event.id
    assert headers["ce_type"] == event.type
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_subject"] == event.subject
    assert headers["content-type"] == "application/json"
    assert json.loads(record.value) == json.loads(event.data.model_dump_json())


@given(events())
def test_each_event_type_is_versioned_in_its_type_and_schema(event: CloudEvent[Contract]) -> None:
    assert event.type == f"id.timpora.{event.spec.name}.v{event.spec.version}"
    assert event.dataschema.endswith(f":{event.spec.name}:v{event.spec.version}")


def _without(record: KafkaRecord, header: str) -> KafkaRecord:
    return replace(record, headers=tuple((k, v) for k, v in record.headers if k != header))


def _with(record: KafkaRecord, header: str, value: bytes) -> KafkaRecord:
    return replace(record, headers=(*((k, v) for k, v in record.headers if k != header), (header, value)))


@given(events())
def test_an_empty_subject_is_refused_not_taken_for_no_subject(event: CloudEvent[Contract]) -> None:
    """A subject header present but empty (how a header with no value arrives) would key every copy by nothing."""
    with pytest.raises(EventDecodeError, match=re.escape("header 'ce_subject' has no value")):
        decode(_with(encode(event), "ce_subject", b""))


@given(events(), st.sampled_from(["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time"]))
def test_a_missing_required_attribute_is_named(event: CloudEvent[Contract], header: str) -> None:
    with pytest.raises(EventDecodeError, match=header):
        decode(_without(encode(event), header))


@given(events())
def test_an_unknown_type_is_refused(event: CloudEvent[Contract]) -> None:
    with pytest.raises(EventDecodeError, match=re.escape("unknown event type 'id.timpora.foreigner.teleported.v1'")):
        decode(_with(encode(event), "ce_type", b"id.timpora.foreigner.teleported.v1"))


@given(events())
def test_a_newer_version_of_a_known_type_is_unknown_until_the_contract_has_it(event: CloudEvent[Contract]) -> None:
    newer = event.type.rsplit(".v", 1)[0] + ".v99"
    with pytest.raises(EventDecodeError, match="unknown event type"):
        decode(_with(encode(event), "ce_type", newer.encode()))


@given(events())
def test_other_specversions_and_content_types_are_refused(event: CloudEvent[Contract]) -> None:
    with pytest.raises(EventDecodeError, match=re.escape("specversion '0.3'")):
        decode(_with(encode(event), "ce_specversion", b"0.3"))
    with pytest.raises(EventDecodeError, match=re.escape("content-type 'application/avro'")):
        decode(_with(encode(event), "content-type", b"application/avro"))


@given(events())
def test_a_time_without_offset_is_refused(event: CloudEvent[Contract]) -> None:
    with pytest.raises(EventDecodeError, match="no time zone"):
        decode(_with(encode(event), "ce_time", b"2026-11-29T10:00:00"))


@given(events())
def test_a_value_that_is_not_json_is_refused(event: CloudEvent[Contract]) -> None:
    with pytest.raises(EventDecodeError, match="not JSON"):
        decode(replace(encode(event), value=b"\xff{not json"))


@given(events())
def test_invalid_data_names_the_field_without_echoing_personal_values(event: CloudEvent[Contract]) -> None:
    data = json.loads(encode(event).value)
    data["foreigner"]["nationality"] = "ZZZ"
    data["foreigner"]["full_name"] = ""
    record = replace(encode(event), value=json.dumps(data).encode())

    with pytest.raises(EventDecodeError) as raised:
        decode(record)

    assert "foreigner.nationality" in raised.value.reason
    assert "foreigner.full_name" in raised.value.reason
    assert event.data.foreigner.passport.number not in raised.value.reason  # type: ignore[attr-defined]


@given(st.binary(max_size=200), st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=8))
def test_decoding_arbitrary_bytes_fails_only_with_a_decode_error(
    value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    with pytest.raises(EventDecodeError):
        decode(KafkaRecord(key=None, value=value, headers=tuple(headers)))


def test_the_catalog_names_every_event_type_the_registry_emits() -> None:
    assert {spec.name for spec in EVENT_SPECS} == {
        "foreigner.arrived",
        "foreigner.updated",
        "foreigner.imported",
        "foreigner.residence-reported",
        "foreigner.stay-reported",
        "foreigner.departed",
        "permit.issued",
        "permit.extended",
        "permit.revoked",
        "permit.expiring",
        "permit.expired",
        "permit.overstay-exceeded",
        "permit.overstay-fee-paid",
        "foreigner.enforcement-recorded",
        "foreigner.deported",
        "foreigner.banned",
        "foreigner.stay-overdue",
        "permit.converted",
        "permit.reentry-granted",
        "permit.exit-permit-issued",
        "sharing.record",
    }


@given(
    events(),
    st.sampled_from(["ce_type", "ce_specversion", "content-type", "ce_dataschema"]),
    st.text(min_size=1, max_size=40).filter(lambda text: text.strip() != ""),
)
def test_a_dead_letter_reason_never_quotes_a_header_that_could_hold_personal_data(
    event: CloudEvent[Contract], header: str, value: str
) -> None:
    # A person's name where the type or the schema should be: the reason names the header, never the value.
    given = f"Siti Aminah {value}"
    with pytest.raises(EventDecodeError) as raised:
        decode(_with(encode(event), header, given.encode()))

    assert "Siti Aminah" not in raised.value.reason
