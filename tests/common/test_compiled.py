"""A statement compiled once for asyncpg: each request's values go to their own places, and a value with no place in
the statement is refused rather than dropped (a filter that would filter nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from timpora.common.db.compiled import CompiledQuery

_PEOPLE = Table("people", MetaData(), Column("name", String), Column("age", Integer))


def _query() -> CompiledQuery:
    return CompiledQuery.of(
        select(_PEOPLE.c.name)
        .where(_PEOPLE.c.age >= bindparam("age", 0, type_=Integer), _PEOPLE.c.name.in_(["a", "b"]))
        .where(_PEOPLE.c.name != bindparam("name", "", type_=String))
        .limit(bindparam("limit", 1, type_=Integer))
    )


def test_values_go_to_their_places_and_constants_stay() -> None:
    query = _query()
    # The IN list, expanded as compiled, is numbered after the rest.
    assert query.arguments({"name": "c", "age": 30, "limit": 5}) == [30, "c", 5, "a", "b"]
    assert "people.age >= $1::INTEGER" in query.sql
    assert "IN ($4::VARCHAR, $5::VARCHAR)" in query.sql


def test_a_value_the_statement_has_no_place_for_is_refused() -> None:
    with pytest.raises(KeyError, match="nationality"):
        _query().arguments({"nationality": "CHN"})
