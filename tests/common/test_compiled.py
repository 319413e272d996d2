"""A statement compiled once for asyncpg: each request's values go to their own places, and a value with no place in
the statement is refused rather than dropped (a filter that would filter nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Dialect, Integer, MetaData, String, Table, TypeDecorator, bindparam, select

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
        _query().arguments({"name": "c", "age": 30, "limit": 5, "nationality": "CHN"})


def test_a_value_left_out_is_refused_not_sent_as_its_placeholder() -> None:
    with pytest.raises(KeyError, match="missing \\['age'\\]"):
        _query().arguments({"name": "c", "limit": 5})


def test_the_statements_own_constants_are_not_the_requests_to_give() -> None:
    query = _query()
    constant = next(name for name in query.order if name not in query.given)
    with pytest.raises(KeyError, match="unknown"):
        query.arguments({"name": "c", "age": 30, "limit": 5, constant: "x"})


class _Prefixed(TypeDecorator[str]):
    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:  # noqa: ARG002 - SQLAlchemy's
        return None if value is None else f"P:{value}"


def test_a_type_that_converts_values_is_applied_or_refused_never_skipped() -> None:
    table = Table("codes", MetaData(), Column("code", _Prefixed))
    query = CompiledQuery.of(select(table.c.code).where(table.c.code == bindparam("code", "", type_=_Prefixed)))
    assert query.arguments({"code": "z"}) == ["P:z"]
    # An IN list's values are expanded past its type's conversion: refused rather than sent unconverted.
    with pytest.raises(TypeError, match="IN list"):
        CompiledQuery.of(select(table.c.code).where(table.c.code.in_(["a", "b"])))
