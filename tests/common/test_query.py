"""A query string read into its model in one validation (timpora.common.http.query.QueryModel) answers as
FastAPI's own query model does: the same values accepted, the same refusals, the same document."""

# No ``from __future__ import annotations``: the probe apps' endpoints are read by FastAPI, names and all.
from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from fastapi import Depends, FastAPI, Query
from httpx import ASGITransport, AsyncClient, QueryParams
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from timpora.common.http.query import QueryModel, document_query_models
from timpora.registry.api.routes.foreigners import ForeignerFilters
from timpora.sharing.api.routes.foreigners import ListFilters


class Probe(BaseModel):
    """One field of each kind the services' query models have."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=10, description="Part of the name")
    code: str | None = Field(default=None, pattern=r"^[0-9]{2}(\.[0-9]{2})?$")
    days: int | None = Field(default=None, ge=0, le=30)
    flag: bool | None = None
    presence: Literal["present", "departed", "any"] = "present"
    limit: int = Field(default=50, ge=1, le=500)
    cursor: UUID | None = None


MODELS: list[type[BaseModel]] = [Probe, ListFilters, ForeignerFilters]
#: Values of every kind, well and badly formed, for any of the models' names.
VALUES = [
    "", " ", "0", "1", "-1", "31", "500", "501", "1e3", "true", "false", "yes", "off", "null", "None",
    "present", "any", "deceased", "VALID", "active", "ab", "a", "Li Wei", "62", "35.26", "35.26.01", "IDN", "idn",
    "CHN", "ZZZ", "E1234567", "x" * 101, "00000000-0000-0000-0000-000000000001", "not-a-uuid", "a\x00b", "é",
]  # fmt: skip


def _apps(model: type[BaseModel]) -> tuple[FastAPI, FastAPI]:
    """The same model read by FastAPI (``Query()``) and by QueryModel, each answering what it read."""
    theirs, ours = FastAPI(), FastAPI()

    @theirs.get("/read")
    async def read_theirs(query: Annotated[model, Query()]) -> dict[str, Any]:  # type: ignore[valid-type]
        return _dumped(query)

    @ours.get("/read")
    async def read_ours(query: Annotated[model, Depends(QueryModel(model))]) -> dict[str, Any]:  # type: ignore[valid-type]
        return _dumped(query)

    return theirs, ours


def _dumped(query: BaseModel) -> dict[str, Any]:
    return query.model_dump(mode="json")


def _answer(status: int, body: Any) -> tuple[int, Any]:
    if status != 422:
        return status, body
    # What a refusal says, field by field; without pydantic's links to its documentation.
    return status, sorted((tuple(e["loc"]), e["type"], e["msg"]) for e in body["detail"])


_NAMES = sorted({name for model in MODELS for name in model.model_fields} | {"unknown"})
_QUERIES = st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(VALUES) | st.text(max_size=6)), max_size=5)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_QUERIES)
async def test_a_query_model_read_in_one_validation_answers_as_fastapis_own(
    model: type[BaseModel], query: list[tuple[str, str]]
) -> None:
    theirs, ours = _apps(model)
    async with (
        AsyncClient(transport=ASGITransport(app=theirs), base_url="http://test") as to_theirs,
        AsyncClient(transport=ASGITransport(app=ours), base_url="http://test") as to_ours,
    ):
        params = QueryParams(tuple(query))
        expected, got = await to_theirs.get("/read", params=params), await to_ours.get("/read", params=params)

    assert _answer(got.status_code, got.json()) == _answer(expected.status_code, expected.json())


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_a_query_model_read_in_one_validation_is_documented_as_fastapis_own(model: type[BaseModel]) -> None:
    theirs, ours = _apps(model)

    documented = document_query_models(ours, ours.openapi())
    expected = theirs.openapi()

    operation, fastapis = documented["paths"]["/read"]["get"], expected["paths"]["/read"]["get"]
    assert operation["parameters"] == fastapis["parameters"]
    assert operation["responses"]["422"] == fastapis["responses"]["422"]
    assert list(operation) == list(fastapis)  # the served JSON too, key for key
    assert documented["components"] == expected["components"]


def test_a_document_changed_after_it_was_built_changes_no_other() -> None:
    # The services' documents have their parameters' schemas rewritten after (document_edges): that must not reach
    # the parameters given to the next document of the same model.
    _, first = _apps(Probe)
    for parameter in document_query_models(first, first.openapi())["paths"]["/read"]["get"]["parameters"]:
        parameter["schema"] = {"changed": True}
    theirs, ours = _apps(Probe)

    documented = document_query_models(ours, ours.openapi())

    expected = theirs.openapi()["paths"]["/read"]["get"]["parameters"]
    assert documented["paths"]["/read"]["get"]["parameters"] == expected


def test_a_route_left_out_of_the_document_is_left_out() -> None:
    app = FastAPI()

    @app.get("/hidden", include_in_schema=False)
    async def hidden(query: Annotated[Probe, Depends(QueryModel(Probe))]) -> None:
        del query

    assert "/hidden" not in document_query_models(app, app.openapi())["paths"]


class Many(BaseModel):
    nationality: list[str] = []


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


@pytest.mark.parametrize("model", [Many, Open], ids=["a field of many values", "names it does not have kept"])
def test_a_model_a_query_dict_cannot_hold_as_fastapi_would_is_refused(model: type[BaseModel]) -> None:
    # FastAPI reads a repeated name as a list for such a field (or an extra name); a dict keeps its last value only.
    with pytest.raises(TypeError):
        QueryModel(model)
